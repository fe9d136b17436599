"""The Prefect API server a command talks to: a temporary local one, and its login."""
