"""Where metrics come from: Kuaishou exports and their imports, the metrics table, data coverage, the demo's data."""
