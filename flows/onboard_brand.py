"""Flow onboard-brand: one brand through the cycle's own code path, with a detailed report."""

from __future__ import annotations

from prefect import flow

from brandsteps.config.settings import yesterday_in
from brandsteps.engine.cycle import CycleSummary
from brandsteps.ledger import BRAND_RUN
from brandsteps.reports.explain import brand_report_markdown
from flows.onboarding_cycle import fail_if_every_brand_errored, only_brand, run_cycle_steps
from flows.parameters import DayOrYesterday
from flows.run_names import brand_run_name
from tasks.artifacts import publish_brand_report
from tasks.configs import load_configs


@flow(name="onboard-brand", log_prints=True, flow_run_name=brand_run_name)
def onboard_brand(
    brand_id: str,
    as_of: DayOrYesterday = None,
    configs: str = "configs",
    metrics: str | None = None,
    ledger: str | None = None,
) -> CycleSummary:
    """Decide one brand for one day and publish its decision report.

    Args:
        brand_id: The brand's id (the name of its file in configs/brands/).
        as_of: The day to decide. Empty means yesterday in the configured timezone.
        configs: The configs folder.
        metrics: Metrics source overriding onboarding.yaml.
        ledger: Ledger SQLAlchemy URL overriding onboarding.yaml.
    """
    portfolio = only_brand(load_configs(configs), brand_id)
    day = as_of or yesterday_in(portfolio.onboarding.timezone)
    # one brand's run: not the portfolio's last cycle
    outcome = run_cycle_steps(portfolio, day, metrics, ledger, kind=BRAND_RUN)
    decision = outcome.ledger.decision(brand_id, day)
    if decision is None:
        status = "has not started yet" if outcome.summary.not_started else "has a later day decided already"
        print(f"{brand_id} {status}: no decision for {day}")
    else:
        report = brand_report_markdown(decision, portfolio.brands[brand_id].name, outcome.ledger.history(brand_id))
        publish_brand_report(brand_id, report)
        print(f"{brand_id}: {decision['verdict']} -> {decision['action']} ({decision['reason']})")
    fail_if_every_brand_errored(outcome.summary)
    return outcome.summary
