"""The decision engine: window metrics, gates, readiness, evidence and the daily cycle over a portfolio."""
