"""Read the daily metrics table (CSV, Parquet, a folder of them, or SQL) and quarantine bad rows."""

from __future__ import annotations

from brandsteps.sources.metrics_source.loading import load_metrics
from brandsteps.sources.metrics_source.model import MetricsBatch, MetricsReadError, MetricsSource
from brandsteps.sources.metrics_source.reading import read_raw
from brandsteps.sources.metrics_source.validation import validate

__all__ = ["MetricsBatch", "MetricsReadError", "MetricsSource", "load_metrics", "read_raw", "validate"]
