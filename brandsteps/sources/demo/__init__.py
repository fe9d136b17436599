"""The demo: a synthetic portfolio, its daily metrics, and the Kuaishou exports they are imported from."""
