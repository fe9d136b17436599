"""Prefect flows: each puts tasks in order for one job."""
