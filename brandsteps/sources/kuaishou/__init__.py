"""Kuaishou 生意通 全店成交分析 exports (CSV/XLSX): read into rows of the daily metrics table, and stored."""
