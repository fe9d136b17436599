"""A cycle process for the crash and concurrency tests: the core's run_day for each day, in order.

    python -m tests.cycle_runner CONFIGS METRICS LEDGER_URL DAY [DAY ...]

Prints one JSON line per decided day, and `write-start`/`write-mid`/`write-end` around and inside
each ledger write so a test can kill the process in the middle of one (CYCLE_RUNNER_MID_WRITE_PAUSE
holds the transaction open that long at write-mid). Also builds the test portfolio (make_portfolio).
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from tests.conftest import simple_playbook

START = date(2026, 1, 1)


def make_portfolio(root: Path, n_brands: int, days: int) -> tuple[Path, Path]:
    """n brands on the simple playbook with a mix of passing, failing and patchy metrics (Parquet)."""
    import yaml

    configs = root / "configs"
    (configs / "brands").mkdir(parents=True, exist_ok=True)
    book = simple_playbook(public_traffic={"on_fail": "demote"}, self_broadcast={"on_fail": "recycle"})
    (configs / "steps.yaml").write_text(yaml.safe_dump(book, sort_keys=False), encoding="utf-8")
    (configs / "onboarding.yaml").write_text("metrics: data/metrics.parquet\n", encoding="utf-8")
    ids = [f"b{i:05d}" for i in range(n_brands)]
    for i, brand_id in enumerate(ids):
        approval = "requires_approval: [public_traffic]\n" if i % 7 == 0 else ""
        (configs / "brands" / f"{brand_id}.yaml").write_text(
            f"brand_id: {brand_id}\nname: 品牌 {i}\ntier: small\ncategory: food\nstart_date: 2026-01-01\n{approval}",
            encoding="utf-8",
        )
    rng = np.random.default_rng(5)
    dates = pd.date_range(START, periods=days)
    n = n_brands * days
    # gmv around the 300-per-window threshold so brands pass, fail, advance and get demoted over the days
    frame = pd.DataFrame(
        {
            "brand_id": np.repeat(ids, days),
            "date": np.tile(dates, n_brands),
            "gmv": rng.gamma(2.0, 90.0, n).round(2),
            "orders": rng.integers(1, 30, n).astype(float),
        }
    )
    frame.loc[rng.random(n) < 0.03, "gmv"] = np.nan  # not measured now and then
    (root / "data").mkdir(exist_ok=True)
    metrics = root / "data" / "metrics.parquet"
    frame.to_parquet(metrics, index=False)
    return configs, metrics


def main(argv: list[str]) -> int:
    from brandsteps.config import load_portfolio
    from brandsteps.engine.cycle import run_day
    from brandsteps.ledger import Ledger, cycle_writes
    from brandsteps.sources.metrics_source import MetricsSource, load_metrics

    configs, metrics, url, *day_args = argv
    days = [date.fromisoformat(d) for d in day_args]
    original = Ledger._record_cycle

    def traced(self: Ledger, frame: object, *args: object, **kw: object) -> object:
        print(f"write-start {len(frame)}", flush=True)  # type: ignore[arg-type]
        result = original(self, frame, *args, **kw)  # type: ignore[arg-type]
        print("write-end", flush=True)
        return result

    Ledger._record_cycle = traced  # type: ignore[method-assign]
    upsert = cycle_writes.upsert_state
    pause = float(os.environ.get("CYCLE_RUNNER_MID_WRITE_PAUSE", "0"))

    def marked_upsert(*args: object, **kw: object) -> object:
        # inside the open transaction: decisions inserted, states not yet written
        print("write-mid", flush=True)
        time.sleep(pause)  # bulk writes are fast; the pause lets a test's kill land right here
        return upsert(*args, **kw)  # type: ignore[arg-type]

    cycle_writes.upsert_state = marked_upsert  # type: ignore[assignment]
    portfolio = load_portfolio(configs, apply_env=False)
    ledger = Ledger(url)
    ledger.create()
    history = load_metrics(MetricsSource(path=Path(metrics)), as_of=max(days), today=max(days))
    print("ready", flush=True)
    for day in days:
        s = run_day(portfolio, history, ledger, day, f"runner-{day}")
        print(
            json.dumps(
                {
                    "as_of": str(day),
                    "decided": s.decided,
                    "already": s.already_decided,
                    "later": s.later_decided,
                    "conflicts": s.conflicts,
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
