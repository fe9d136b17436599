"""Tests of the demo's export rendering (brandsteps.sources.demo) and of the slow stores' refund history it imports; the
exports' round trip is in test_demo_data."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
import yaml

from brandsteps.config import Portfolio, load_portfolio
from brandsteps.config.settings import targets
from brandsteps.engine.backtest import known_at, replay, with_playbook
from brandsteps.engine.cycle import metrics_start
from brandsteps.sources.demo.exports import remove_old_exports
from brandsteps.sources.demo.files import as_count, as_money, as_wan, split_whole
from brandsteps.sources.demo.folder import DemoSummary, write_demo_folder
from brandsteps.sources.demo.profiles import USER_PROFILES
from brandsteps.sources.demo.store_exports import reexport_mornings, refunds_as_exported
from brandsteps.sources.imports import BUILTIN_PROFILES, ImportProfile
from brandsteps.sources.imports.records import as_known, read_revisions
from brandsteps.sources.kuaishou.cells import parse_kuaishou_series
from brandsteps.sources.metrics_source import MetricsSource, load_metrics


def _sums_in_every_order(part: np.ndarray, group: np.ndarray, n: int) -> list[np.ndarray]:
    """The groups' sums as readers add them: in order, backwards, pairwise (numpy, pandas' sorted groups) and compensated."""
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    forward, backward = np.zeros(n), np.zeros(n)
    for i in range(len(part)):  # a reference loop over a few hundred rows
        forward[group[i]] += part[i]
        backward[group[-1 - i]] += part[-1 - i]
    return [forward, backward, np.add.reduceat(part, starts), pd.Series(part).groupby(group).sum().to_numpy()]


@pytest.mark.parametrize(
    "least",
    [
        pytest.param(1, id="at-least-one-per-row"),  # per-item sales: every SKU on sale sold something
        pytest.param(0, id="rows-may-get-nothing"),  # 快分销 预估佣金 (分): a 达人 may earn nothing
    ],
)
def test_split_whole_adds_up_to_the_total_in_any_order(least: int) -> None:
    rng = np.random.default_rng(3)
    size = rng.integers(1, 12, 40)
    group = np.repeat(np.arange(40), size)
    total = np.floor(rng.lognormal(6, 2, 40)) + size  # at least one unit per row
    part = split_whole(total, group, rng.pareto(1.5, len(group)) + 0.05, least)
    assert (part == np.floor(part)).all() and (part >= least).all()
    # Whole numbers add up exactly whatever the order, so whole yuan read back give the total however the reader
    # adds them (fen would not: 0.1 + 0.2 != 0.3, and pandas adds a sorted group pairwise).
    for sums in _sums_in_every_order(part, group, 40):
        assert np.array_equal(sums, total)


def test_split_whole_gives_back_what_the_floors_took() -> None:
    # 5 units over 4 rows with one row weighing almost everything: the floors (1 each) leave the last row its 1
    part = split_whole(np.array([5.0]), np.zeros(4, dtype=np.int64), np.array([100.0, 0.01, 0.01, 0.01]), 1)
    assert part.tolist() == [2.0, 1.0, 1.0, 1.0]


def test_cells_read_back_as_the_same_floats() -> None:
    # Exports write money to the fen and counts whole: the Kuaishou parser gives back the very floats written.
    rng = np.random.default_rng(5)
    money = np.round(rng.lognormal(7, 3, 20_000), 2)
    counts = np.rint(rng.lognormal(7, 3, 20_000))
    for cells, values in (
        (as_money(money, "¥"), money),
        (as_money(money, "￥"), money),
        (as_count(counts), counts),
        (as_wan(counts), counts),
    ):
        parsed, invalid = parse_kuaishou_series(pd.Series(cells, dtype=object))
        assert not invalid.any() and np.array_equal(parsed.to_numpy(), values)
    assert as_wan(np.array([123_456.0, 120_000.0, 9_999.0])).tolist() == ["12.3456万", "12万", "9,999"]
    assert as_money(np.array([1234.5, np.nan]), "¥").tolist() == ["¥1,234.50", "-"]  # not measured: '-', never 0


def test_user_profiles_are_valid_and_named_apart_from_the_built_ins() -> None:
    for name, text in USER_PROFILES.items():
        ImportProfile.model_validate(yaml.safe_load(text))
        assert name not in BUILTIN_PROFILES


def test_remove_old_exports_only_takes_the_demos_files(tmp_path: Path) -> None:
    (tmp_path / "全店成交分析").mkdir()
    old = [
        tmp_path / "全店成交分析" / "d051-muyu-home_全店成交分析_20260101-20260301.csv",
        tmp_path / "磁力金牛_账户报表_20260101-20260301.csv",
    ]
    kept = [tmp_path / "磁力金牛-7月.csv", tmp_path / "全店成交分析" / "my-own-export.csv"]  # an operator's own files
    for path in (*old, *kept):
        path.write_text("x", encoding="utf-8")
    remove_old_exports(tmp_path)
    assert not any(p.exists() for p in old) and all(p.exists() for p in kept)


# --- the slow stores' refunds as operators live them: daily exports, weekly re-exports, each at its time ----------


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        pytest.param(1, 42.0, id="the-next-morning"),  # REFUNDS_FIRST_SHARE of the settled 100
        pytest.param(7, 75.72, id="a-week-later"),  # 1 - 0.58 * (11/17)^2 = 0.75717…, to the fen
        pytest.param(14, 96.79, id="two-weeks-later"),  # 1 - 0.58 * (4/17)^2 = 0.96789…
        pytest.param(17, 99.8, id="the-day-before-settling"),  # 1 - 0.58 * (1/17)^2 = 0.99799…
        pytest.param(18, 100.0, id="settled"),  # REFUNDS_SETTLE_DAYS: every refund is in
        pytest.param(30, 100.0, id="long-settled"),
    ],
)
def test_refunds_grow_from_the_first_export_to_the_settled_amount(age: int, expected: float) -> None:
    assert refunds_as_exported(np.array([100.0]), np.array([age])).tolist() == [expected]


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        # every 7 days back from the morning after the end (2026-10-01), while the re-export covers a day from first on
        pytest.param(dt.date(2026, 9, 1), "2026-09-03 2026-09-10 2026-09-17 2026-09-24 2026-10-01", id="a-month"),
        pytest.param(dt.date(2026, 9, 23), "2026-09-24 2026-10-01", id="covers-its-first-day"),  # 09-24 covers 09-23
        pytest.param(dt.date(2026, 9, 24), "2026-10-01", id="the-day-after-a-re-export"),  # 09-24 covers up to 09-23
    ],
)
def test_reexport_mornings_are_weekly_back_from_the_day_after_the_end(first: dt.date, expected: str) -> None:
    assert " ".join(f"{day}" for day in reexport_mornings(first, dt.date(2026, 9, 30))) == expected


SMALL_END = dt.date(2026, 9, 30)  # well before the clock: no re-export time is clamped to now


@dataclass(frozen=True)
class SmallDemo:
    """A 20-brand, 60-day demo (the smallest with a late_refunds brand) and what the tests read of it."""

    summary: DemoSummary
    portfolio: Portfolio
    source: MetricsSource
    late: str  # the late_refunds brand
    start: dt.date  # its start_date
    limit: float  # its affiliate_trial refund limit (its tier's)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> SmallDemo:
    summary = write_demo_folder(tmp_path_factory.mktemp("small"), n_brands=20, days=60, end=SMALL_END, seed=7)
    portfolio = load_portfolio(summary.configs_dir, apply_env=False)
    late = next(b for b, kind in summary.archetypes.items() if kind == "late_refunds")
    brand = portfolio.brands[late]
    refund = next(c for c in portfolio.playbook.stage("affiliate_trial").criteria if c.metric == "refund_rate")
    limit = refund.threshold[brand.tier] if isinstance(refund.threshold, dict) else refund.threshold
    return SmallDemo(summary, portfolio, targets(portfolio, None, None).metrics, late, brand.start_date, float(limit))


def _shanghai(day: dt.date, hour: int) -> pd.Timestamp:
    return pd.Timestamp(dt.datetime.combine(day, dt.time(hour), tzinfo=ZoneInfo("Asia/Shanghai")))


def test_the_revision_record_holds_each_weekly_restatement_at_its_time(small: SmallDemo) -> None:
    revisions = read_revisions(small.source)
    first_day = revisions[(revisions["brand_id"] == small.late) & (revisions["date"] == pd.Timestamp(small.start))]
    metrics = pd.read_parquet(small.summary.metrics_path).set_index(["brand_id", "date"])
    settled = float(metrics.at[(small.late, pd.Timestamp(small.start)), "refund_amount"])
    week = dt.timedelta(days=7)
    # It starts on a re-export's weekday: its first day is re-exported 7, 14 and 21 days later, at 10:00 those mornings
    # (each file the last 30 days up to the day before, from its start), its refunds grown from the daily export's 42%
    # to 76%, 97% and, settled after 18 days, all of them; the re-export 28 days later changes nothing.
    shares = refunds_as_exported(np.full(4, settled), np.array([1, 7, 14, 21]))

    def file_of(k: int) -> str:  # the re-export k weeks after the start covers the start to the day before it
        return (
            f"{small.late}_全店成交分析_{small.start:%Y%m%d}-{small.start + k * week - dt.timedelta(days=1):%Y%m%d}.csv"
        )

    records = [(Path(r.file).name, r.recorded_at, r.old_value, r.new_value) for r in first_day.itertuples()]
    assert records == [(file_of(k), _shanghai(small.start + k * week, 10), shares[k - 1], shares[k]) for k in (1, 2, 3)]
    assert set(first_day["column_name"]) == {"refund_amount"}
    assert shares[3] == settled  # the metrics hold the settled amount


def test_as_known_at_a_deadline_gives_the_refunds_a_live_cycle_saw(small: SmallDemo) -> None:
    daily = pd.read_parquet(small.summary.metrics_path)
    daily = daily[daily["brand_id"] == small.late].set_index("date").sort_index()
    decided = small.start + dt.timedelta(days=13)  # its first affiliate_trial decision: 14 days in the stage
    deadline = known_at(small.portfolio, decided)
    seen = as_known(daily.reset_index(), read_revisions(small.source), deadline).set_index("date")
    # At the deadline (the next day, 12:00 Shanghai) the re-export made that morning at 10:00 had restated every day
    # of the window: each day's refunds as old as that morning made them (1 day for the decided day, 14 for the first).
    window = pd.date_range(small.start, decided)
    ages = np.array([(decided + dt.timedelta(days=1) - day.date()).days for day in window])
    as_exported = refunds_as_exported(daily.loc[window, "refund_amount"].to_numpy(), ages)
    assert seen.loc[window, "refund_amount"].tolist() == as_exported.tolist()

    def rate(frame: pd.DataFrame, last: dt.date) -> float:
        part = frame.loc[pd.Timestamp(small.start) : pd.Timestamp(last)]
        return float(part["refund_amount"].sum() / part["gmv"].sum())

    lagged = decided - dt.timedelta(days=7)
    # Unlagged, the window's refunds as then known sit below the limit; lagged 7 days (the window's first week, 8–14
    # days old) above it, as do the settled refunds the metrics hold now.
    assert rate(seen, decided) < small.limit < rate(seen, lagged) < rate(daily, decided)


def _without_lag(playbook: Path, out: Path) -> Path:
    """The playbook with every lag_days removed (what --policy /tmp/steps-nolag.yaml compares with)."""
    doc = yaml.safe_load(playbook.read_text(encoding="utf-8"))
    for stage in doc["stages"]:
        for rule in [*stage["criteria"], *stage.get("guardrails", [])]:
            rule.pop("lag_days", None)
    out.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return out


def test_backtest_as_known_without_lag_advances_the_late_brand_alone(small: SmallDemo, tmp_path: Path) -> None:
    first, last = small.summary.start, small.summary.end
    without = with_playbook(small.portfolio, _without_lag(small.summary.playbook_path, tmp_path / "nolag.yaml"))
    policies = {"without-lag": without, "shipped": small.portfolio}
    start = min(metrics_start(p, first) for p in policies.values())
    history = load_metrics(small.source, as_of=last, today=last + dt.timedelta(days=1), start=start)
    revisions = read_revisions(small.source)  # --as-known
    runs = {name: replay(policy, history, first, last, name, revisions=revisions) for name, policy in policies.items()}
    moved = {}
    for label, run in runs.items():
        moves = run.decisions[run.decisions["action"].isin(["advance", "await_approval"])]
        moved[label] = {(r.brand_id, r.stage): f"{r.as_of:%Y-%m-%d}" for r in moves.itertuples()}
    # Only the late_refunds brand moves without the lag and not with it: it passes 14, 15 and 16 days in (the third
    # pass advances it), reading its youngest refunds as the weekly re-exports had left them.
    only = {key: day for key, day in moved["without-lag"].items() if key not in moved["shipped"]}
    assert only == {(small.late, "affiliate_trial"): f"{small.start + dt.timedelta(days=15)}"}
    lagged = runs["shipped"].decisions
    lagged = lagged[(lagged["brand_id"] == small.late) & (lagged["verdict"] != "INCONCLUSIVE")]
    # With the playbook's lag_days 7 it fails its first decision and every one 14 days later (recycle restarts the
    # clock): the window a week back holds refunds most of which had arrived.
    assert [(f"{r.as_of:%Y-%m-%d}", r.action, r.reason) for r in lagged.itertuples()] == [
        ("2026-09-16", "recycle", "refund_rate 38.6% > 35% (lagged 7 days)"),
        ("2026-09-30", "recycle", "refund_rate 38.08% > 35% (lagged 7 days)"),
    ]
