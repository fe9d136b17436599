"""Task: load and validate the configs folder."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from brandsteps.config import Portfolio, load_portfolio


@task(name="load-configs", cache_policy=NONE)
def load_configs(configs_dir: str) -> Portfolio:
    portfolio = load_portfolio(configs_dir)
    get_run_logger().info("Loaded %d brands; playbook version %s", len(portfolio.brands), portfolio.playbook_version)
    return portfolio
