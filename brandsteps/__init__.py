"""STEPS onboarding orchestrator: the pure domain core (no Prefect imports here)."""

__version__ = "0.1.0"
