"""Flow-run names that say what a run is about, so the Runs page reads as a diary (`cycle-2026-01-03`).

Prefect calls these at the start of a run, with the run's parameters in `prefect.runtime.flow_run`.
A name must never fail a run: a parameter that does not parse keeps its text, and the run itself
then fails with the message that names the parameter.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from prefect import get_client
from prefect.runtime import flow_run


def _slug(text: object) -> str:
    """Prefect shows any name, but ids in names stay greppable: no spaces or slashes."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text)).strip("-") or "unnamed"


def _day_or_yesterday(value: object, configs: object) -> str:
    if value:
        return _slug(value)
    # as_of empty means yesterday in the configured timezone: name the day the run decides
    try:
        from brandsteps.config import load_settings
        from brandsteps.config.settings import yesterday_in

        _, _, onboarding, _ = load_settings(str(configs or "configs"), apply_env=True)
        return yesterday_in(onboarding.timezone).isoformat()
    except Exception:  # a broken configs folder fails the run itself, with its own message
        return "yesterday"


def _parameters() -> dict[str, Any]:
    return dict(flow_run.parameters or {})


def cycle_run_name() -> str:
    """`cycle-<as_of>`, or `cycle-<as_of>-shard-<i>-of-<n>` for a shard (i counted from 1)."""
    p = _parameters()
    name = f"cycle-{_day_or_yesterday(p.get('as_of'), p.get('configs'))}"
    index = p.get("shard_index")
    if isinstance(index, int):
        name += f"-shard-{index + 1}-of-{p.get('shards')}"
    return name


def brand_run_name() -> str:
    """`brand-<brand>-<as_of>` for onboard-brand."""
    p = _parameters()
    return f"brand-{_slug(p.get('brand_id'))}-{_day_or_yesterday(p.get('as_of'), p.get('configs'))}"


def review_flow_run_name() -> str:
    """`review-<brand>` at the start; the flow adds the stage once it has read it (`rename_run`)."""
    current = flow_run.name or ""
    brand = _slug(_parameters().get("brand_id"))
    # the cycle names the reviews it starts `review-<brand>-<stage>` already
    return current if current.startswith(f"review-{brand}-") else f"review-{brand}"


def backtest_run_name() -> str:
    p = _parameters()
    return f"backtest-{_slug(p.get('date_from'))}-{_slug(p.get('date_to'))}"


def replay_run_name() -> str:
    p = _parameters()
    return f"replay-{_slug(p.get('start'))}-{_slug(p.get('end'))}"


def rename_run(name: str) -> None:
    """Rename the current flow run (for what only the run itself learns, such as a review's stage)."""
    run_id = flow_run.get_id()
    if run_id and flow_run.name != name:
        with get_client(sync_client=True) as client:
            client.set_flow_run_name(UUID(run_id), name=name)
