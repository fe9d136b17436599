"""Prefect tasks: thin wrappers over the brandsteps core adding retries, logging and artifacts."""
