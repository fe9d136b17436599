"""Flow backtest: replay daily cycles over history under one or two policies into scratch ledgers and report."""

from __future__ import annotations

from datetime import date

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NONE

from brandsteps.config import Portfolio
from brandsteps.config.settings import targets, today_in
from brandsteps.engine.backtest import BacktestRun, differences, replay, report_markdown, with_playbook
from brandsteps.engine.cycle import CycleSummary, metrics_start
from brandsteps.sources.metrics_source import MetricsBatch
from flows.parameters import Day
from flows.run_names import backtest_run_name
from tasks.configs import load_configs
from tasks.metrics import load_daily_metrics
from tasks.prefect_types import synchronous


@task(name="replay-policy", cache_policy=NONE, task_run_name="replay-{label}")
def replay_policy(
    portfolio: Portfolio, history: MetricsBatch, date_from: date, date_to: date, label: str
) -> BacktestRun:
    """One policy over every day of the range, into its own scratch ledger, with a progress artifact."""
    progress = synchronous(
        create_progress_artifact(progress=0.0, description=f"Backtest {label}: {date_from} to {date_to}")
    )

    def step(done: int, total: int, _summary: CycleSummary) -> None:
        if done == total or done % max(1, total // 20) == 0:
            update_progress_artifact(artifact_id=progress, progress=100.0 * done / total)

    return replay(portfolio, history, date_from, date_to, label, step)


@task(name="publish-backtest-report", cache_policy=NONE)
def publish_backtest_report(markdown: str, date_from: date, date_to: date) -> None:
    create_markdown_artifact(key="backtest-report", markdown=markdown, description=f"Backtest {date_from} to {date_to}")


@flow(name="backtest", log_prints=True, flow_run_name=backtest_run_name)
def backtest(
    date_from: Day,
    date_to: Day,
    policy: str | None = None,
    compare: str | None = None,
    configs: str = "configs",
    metrics: str | None = None,
) -> str:
    """Replay the daily cycles from date_from to date_to into scratch ledgers; the real ledger is untouched.

    Args:
        date_from: First day to replay.
        date_to: Last day to replay (inclusive).
        policy: A steps.yaml-shaped playbook to replay instead of configs/steps.yaml.
        compare: A second playbook to replay side by side; the report lists brands whose decisions differ.
        configs: The configs folder (brands and the default playbook).
        metrics: Metrics source overriding onboarding.yaml.
    """
    if date_to < date_from:
        raise ValueError(f"date_to {date_to} is before date_from {date_from}")
    portfolio = load_configs(configs)
    policies = [(policy or f"{configs}/steps.yaml", with_playbook(portfolio, policy) if policy else portfolio)]
    if compare:
        policies.append((compare, with_playbook(portfolio, compare)))
    where = targets(portfolio, metrics, None)
    start = min(metrics_start(p, date_from) for _, p in policies)
    history = load_daily_metrics(where.metrics, date_to, today_in(where.timezone), start)
    runs = [replay_policy(p, history, date_from, date_to, label) for label, p in policies]
    diff = differences(runs[0], runs[1]) if compare else None
    markdown = report_markdown(runs, diff)
    publish_backtest_report(markdown, date_from, date_to)
    print(
        f"Backtest {date_from} to {date_to}: {len(runs)} policies"
        + (f", {len(diff)} brands differ" if diff is not None else "")
    )
    return markdown
