"""Data timing: lag_days per criterion, readiness and the data deadline (brandsteps.engine.readiness, cycle, gates, window)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brandsteps.config import load_portfolio
from brandsteps.engine.cycle import decide_all, expected_versions, mark_readiness, prepare_cohorts, window_metrics_for
from brandsteps.engine.readiness import UNREADY, apply_deadline, deadline_of, missing_inputs, unready_table
from brandsteps.ledger import Ledger
from brandsteps.reports.explain import criterion_window
from brandsteps.sources.metrics_source import MetricsBatch, validate
from tests.conftest import simple_playbook, write_configs

SHANGHAI = ZoneInfo("Asia/Shanghai")
AS_OF = date(2026, 1, 20)
TODAY = date(2026, 1, 21)
# affiliate_trial: gmv over the 3-day window, refund_rate over the window 2 days back, a shadow aov that never decides
PLAYBOOK = simple_playbook(
    affiliate_trial={
        "criteria": [
            {"metric": "gmv", "op": ">=", "threshold": 300, "kind": "must"},
            {"metric": "refund_rate", "op": "<=", "threshold": 0.3, "kind": "must", "lag_days": 2},
            {"metric": "aov", "op": ">=", "threshold": 1, "kind": "must", "shadow": True},
        ]
    }
)
DEADLINE = {"metrics": "data/metrics.csv", "ledger": "sqlite:///data/ledger.sqlite", "data_deadline": "12:00"}


def _portfolio(tmp_path: Path, brands: dict[str, dict], onboarding: dict | None = None, playbook: dict | None = None):
    return load_portfolio(
        write_configs(tmp_path, brands, playbook=playbook or PLAYBOOK, onboarding=onboarding or DEADLINE),
        apply_env=False,
    )


def _state(tmp_path: Path) -> pd.DataFrame:
    ledger = Ledger(f"sqlite:///{tmp_path / 'state.sqlite'}")
    ledger.create()
    return ledger.read_state()


def _rows(brand: str, first: date, last: date, **columns: float | None) -> list[dict]:
    """One row a day from first to last with gmv 200 and refund_amount 20 (10%) unless columns say otherwise."""
    values = {"gmv": 200.0, "refund_amount": 20.0, "orders": 10.0, **columns}
    return [
        {"brand_id": brand, "date": pd.Timestamp(first + timedelta(days=i)), **values}
        for i in range((last - first).days + 1)
    ]


def _batch(rows: list[dict]) -> MetricsBatch:
    return validate(pd.DataFrame(rows), as_of=AS_OF, today=TODAY)


@pytest.mark.parametrize(
    ("deadline", "as_of", "expected"),
    [
        pytest.param(
            "12:00", date(2026, 1, 20), datetime(2026, 1, 21, 12, 0, tzinfo=SHANGHAI), id="noon-the-day-after"
        ),
        pytest.param(
            "00:00", date(2026, 12, 31), datetime(2027, 1, 1, 0, 0, tzinfo=SHANGHAI), id="midnight-across-the-year"
        ),
        pytest.param(None, date(2026, 1, 20), None, id="no-deadline"),
    ],
)
def test_deadline_is_the_local_time_on_the_day_after(
    deadline: str | None, as_of: date, expected: datetime | None
) -> None:
    assert deadline_of(as_of, deadline, "Asia/Shanghai") == expected


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # every deciding input has a value on its day: gmv on the 20th, gmv and refund_amount on the 18th (lag 2)
        pytest.param(_rows("b", date(2026, 1, 1), AS_OF), "", id="ready"),
        # the day itself has not arrived: gmv is missing on as_of (refund_rate's day, the 18th, is in)
        pytest.param(
            _rows("b", date(2026, 1, 1), AS_OF - timedelta(days=1)), "gmv on 2026-01-20", id="yesterday-missing"
        ),
        # the 20th arrived without refunds: refund_rate reads them only on the 18th, so nothing is missing
        pytest.param(
            _rows("b", date(2026, 1, 1), AS_OF - timedelta(days=1)) + _rows("b", AS_OF, AS_OF, refund_amount=None),
            "",
            id="lag-skips-today",
        ),
        # the 18th has no refunds: the lagged criterion's day misses refund_amount (orders and aov never decide)
        pytest.param(
            [
                r | {"refund_amount": None} if r["date"] == pd.Timestamp(2026, 1, 18) else r
                for r in _rows("b", date(2026, 1, 1), AS_OF)
            ],
            "refund_amount on 2026-01-18",
            id="lagged-day-missing",
        ),
        # nothing at all: today's day first, then the lagged one, each with its columns in base-column order
        pytest.param([], "gmv on 2026-01-20; gmv, refund_amount on 2026-01-18", id="nothing-arrived"),
    ],
)
def test_missing_inputs_name_the_columns_and_days(tmp_path: Path, rows: list[dict], expected: str) -> None:
    portfolio = _portfolio(tmp_path, {"b": {}})
    cohorts = prepare_cohorts(portfolio, _state(tmp_path), AS_OF)
    daily = _batch(rows).daily if rows else MetricsBatch.empty().daily
    assert missing_inputs(portfolio, daily, cohorts, AS_OF).tolist() == [expected]


def test_a_lagged_day_before_stage_entry_is_not_awaited(tmp_path: Path) -> None:
    # entered on the 20th: the refund window (ending the 18th) reads no day of this stage, so only gmv is awaited
    portfolio = _portfolio(tmp_path, {"b": {"start_date": "2026-01-20"}})
    cohorts = prepare_cohorts(portfolio, _state(tmp_path), AS_OF)
    assert missing_inputs(portfolio, MetricsBatch.empty().daily, cohorts, AS_OF).tolist() == ["gmv on 2026-01-20"]


@pytest.mark.parametrize(
    ("now", "status", "not_ready"),
    [
        pytest.param(
            datetime(2026, 1, 21, 11, 59, tzinfo=SHANGHAI),
            [UNREADY, "due"],
            ["", ""],
            id="before-the-deadline-it-waits",
        ),
        pytest.param(
            datetime(2026, 1, 21, 12, 0, tzinfo=SHANGHAI),
            ["due", "due"],
            ["data not in by the deadline 2026-01-21 12:00: no gmv on 2026-01-20", ""],
            id="from-the-deadline-it-is-decided",
        ),
    ],
)
def test_apply_deadline(now: datetime, status: list[str], not_ready: list[str]) -> None:
    cohorts = pd.DataFrame({"status": ["due", "due"]}, index=pd.Index(["late", "ready"], name="brand_id"))
    missing = pd.Series(["gmv on 2026-01-20", ""], index=cohorts.index, dtype=object)
    out = apply_deadline(cohorts, missing, datetime(2026, 1, 21, 12, 0, tzinfo=SHANGHAI), now)
    assert out["status"].tolist() == status
    assert out["not_ready"].tolist() == not_ready


def test_without_a_deadline_brands_are_decided_on_what_is_there() -> None:
    cohorts = pd.DataFrame({"status": ["due"]}, index=pd.Index(["late"], name="brand_id"))
    assert (
        apply_deadline(
            cohorts, pd.Series(["gmv on 2026-01-20"], index=cohorts.index), None, datetime(2026, 1, 21, tzinfo=SHANGHAI)
        )
        is cohorts
    )


def _decide(
    portfolio, ledger: Ledger, batch: MetricsBatch, now: datetime | None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """One cycle for AS_OF through the core's steps, recorded; returns the cohorts, the decisions and what is missing."""
    cohorts = prepare_cohorts(portfolio, ledger.read_state(), AS_OF)
    cohorts, missing = mark_readiness(portfolio, batch, cohorts, AS_OF, now)
    decisions = decide_all(portfolio, cohorts, batch, window_metrics_for(portfolio, batch, cohorts), AS_OF)
    ledger.record_cycle(decisions, AS_OF, None, expected_versions(cohorts))
    return cohorts, decisions, missing


def test_unready_brands_wait_then_are_decided_exactly_once(tmp_path: Path) -> None:
    portfolio = _portfolio(tmp_path, {"early": {}, "late": {"name": "迟到品牌"}})
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    ledger.create()
    history = _rows("early", date(2026, 1, 1), AS_OF) + _rows("late", date(2026, 1, 1), AS_OF - timedelta(days=1))
    morning = datetime(2026, 1, 21, 9, 0, tzinfo=SHANGHAI)

    # 09:00: late's day has not arrived, so only early is decided; late is listed with what it waits for
    cohorts, decisions, missing = _decide(portfolio, ledger, _batch(history), morning)
    assert decisions["brand_id"].tolist() == ["early"]
    assert unready_table(cohorts, missing).to_dict("records") == [
        {"brand_id": "late", "name": "迟到品牌", "stage": "affiliate_trial", "missing": "gmv on 2026-01-20"}
    ]
    # 10:15: late's export is imported; the next run decides late, and early (decided) is not decided again
    arrived = _batch(history + _rows("late", AS_OF, AS_OF))
    _, decisions, _ = _decide(portfolio, ledger, arrived, morning + timedelta(hours=1, minutes=15))
    assert decisions["brand_id"].tolist() == ["late"]
    # a third run (a second import event of the same day) finds both decided: one decision each in the ledger
    _, decisions, _ = _decide(portfolio, ledger, arrived, morning + timedelta(hours=2))
    assert decisions.empty
    assert sorted(ledger.decisions_for(AS_OF)["brand_id"]) == ["early", "late"]


def test_from_the_deadline_an_unready_brand_is_inconclusive_and_never_moves(tmp_path: Path) -> None:
    # late has passed twice already (one more PASS would advance it) and a guardrail-free stage: only the deadline decides
    portfolio = _portfolio(tmp_path, {"late": {}})
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    ledger.create()
    _, decisions, _ = _decide(
        portfolio, ledger, _batch(_rows("late", date(2026, 1, 1), AS_OF - timedelta(days=1))), None
    )
    row = decisions.iloc[0]
    assert (row["verdict"], row["action"], row["to_stage"]) == ("INCONCLUSIVE", "hold", "affiliate_trial")
    assert row["reason"] == "data not in by the deadline 2026-01-21 12:00: no gmv on 2026-01-20"
    assert (
        row["action_reason"]
        == "no move on INCONCLUSIVE (data not in by the deadline 2026-01-21 12:00: no gmv on 2026-01-20)"
    )


def test_each_criterion_records_its_own_window_and_lag(tmp_path: Path) -> None:
    # refunds of 150 on the 19th and 20th (the last two days) are outside refund_rate's window (17th..18th after the
    # lag), which reads 20 + 20 of 400: 10%; unlagged it would read 340 of 600 (57%) and fail
    portfolio = _portfolio(tmp_path, {"b": {}})
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    ledger.create()
    rows = [
        r | {"refund_amount": 150.0} if r["date"] >= pd.Timestamp(2026, 1, 19) else r
        for r in _rows("b", date(2026, 1, 1), AS_OF)
    ]
    _, decisions, _ = _decide(portfolio, ledger, _batch(rows), None)
    criteria = {c["metric"]: c for c in json.loads(decisions.iloc[0]["criteria"])}
    assert (criteria["gmv"]["window"], criteria["gmv"]["lag_days"]) == ("2026-01-18..2026-01-20", 0)
    assert (
        criteria["refund_rate"]["window"],
        criteria["refund_rate"]["lag_days"],
        criteria["refund_rate"]["value"],
    ) == ("2026-01-16..2026-01-18", 2, 0.1)
    assert criteria["refund_rate"]["reason"] == "refund_rate 10% <= 30% (lagged 2 days)"
    assert criterion_window(criteria["refund_rate"]) == "2026-01-16..2026-01-18 (lag 2)"


@pytest.mark.parametrize(
    ("criterion", "shown"),
    [
        pytest.param({"window": "2026-01-18..2026-01-20", "lag_days": 0}, "2026-01-18..2026-01-20", id="unlagged"),
        pytest.param({"window": "", "lag_days": 7}, "no days yet (lag 7)", id="lagged-window-before-stage-entry"),
        pytest.param({}, "–", id="recorded-before-windows-were-kept"),
    ],
)
def test_criterion_window_as_explain_shows_it(criterion: dict, shown: str) -> None:
    assert criterion_window(criterion) == shown


# ---------------------------------------------------------------- properties

DAYS = 12
brand_days = st.lists(
    st.tuples(st.floats(0, 500), st.one_of(st.none(), st.floats(0, 400)), st.booleans()), min_size=DAYS, max_size=DAYS
)
PROPERTY_SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


def _history(brands: list[list[tuple[float, float | None, bool]]]) -> MetricsBatch:
    """Each brand's DAYS days ending on AS_OF: gmv, refund_amount (None: not measured), and whether the row exists."""
    rows = []
    for i, days in enumerate(brands):
        for d, (gmv, refund, present) in enumerate(days):
            if present:
                rows.append(
                    {
                        "brand_id": f"b{i}",
                        "date": pd.Timestamp(AS_OF - timedelta(days=DAYS - 1 - d)),
                        "gmv": gmv,
                        "refund_amount": refund,
                        "orders": 5.0,
                    }
                )
    return _batch(rows) if rows else MetricsBatch.empty()


def _lagged_playbook(lag: int) -> dict:
    return simple_playbook(
        affiliate_trial={
            "window_days": 5,
            "criteria": [
                {"metric": "gmv", "op": ">=", "threshold": 300, "kind": "must"},
                {"metric": "refund_rate", "op": "<=", "threshold": 0.3, "kind": "must", "lag_days": lag},
            ],
        }
    )


@PROPERTY_SETTINGS
@given(st.lists(brand_days, min_size=1, max_size=6), st.integers(0, 4), st.sampled_from([9, 13]))
def test_a_brand_that_is_not_ready_is_never_moved(
    tmp_path_factory: pytest.TempPathFactory, brands: list, lag: int, hour: int
) -> None:
    # before the deadline (09:00) an unready brand is not decided; from it (13:00) it is INCONCLUSIVE and holds
    root = tmp_path_factory.mktemp("ready")
    portfolio = _portfolio(
        root, {f"b{i}": {"start_date": "2026-01-09"} for i in range(len(brands))}, playbook=_lagged_playbook(lag)
    )
    ledger = Ledger(f"sqlite:///{root / 'ledger.sqlite'}")
    ledger.create()
    batch = _history(brands)
    cohorts, decisions, missing = _decide(portfolio, ledger, batch, datetime(2026, 1, 21, hour, 0, tzinfo=SHANGHAI))
    unready = set(missing[missing != ""].index)
    decided = (
        decisions.set_index("brand_id") if len(decisions) else pd.DataFrame(columns=["verdict", "to_stage", "stage"])
    )
    if hour < 12:
        assert unready.isdisjoint(decided.index)
    else:
        for brand in unready:
            assert decided.at[brand, "verdict"] == "INCONCLUSIVE"
            assert decided.at[brand, "to_stage"] == decided.at[brand, "stage"]


def _unlagged_playbook() -> dict:
    book = _lagged_playbook(0)
    for criterion in book["stages"][0]["criteria"]:
        criterion.pop("lag_days", None)
    return book


def _decisions_of(root: Path, playbook: dict, batch: MetricsBatch, n: int) -> pd.DataFrame:
    portfolio = _portfolio(
        root,
        {f"b{i}": {"start_date": "2026-01-09"} for i in range(n)},
        onboarding={"metrics": "m.csv"},
        playbook=playbook,
    )
    ledger = Ledger(f"sqlite:///{root / 'ledger.sqlite'}")
    ledger.create()
    return _decide(portfolio, ledger, batch, None)[1].set_index("brand_id")


@PROPERTY_SETTINGS
@given(st.lists(brand_days, min_size=1, max_size=6))
def test_lag_zero_gives_todays_decisions_exactly(tmp_path_factory: pytest.TempPathFactory, brands: list) -> None:
    # lag_days: 0 written out is the criterion without it: same policy version, verdicts, actions, reasons, criteria
    batch = _history(brands)
    explicit = _decisions_of(tmp_path_factory.mktemp("lag0"), _lagged_playbook(0), batch, len(brands))
    implicit = _decisions_of(tmp_path_factory.mktemp("nolag"), _unlagged_playbook(), batch, len(brands))
    pd.testing.assert_frame_equal(explicit, implicit)


@PROPERTY_SETTINGS
@given(st.lists(brand_days, min_size=1, max_size=6), st.integers(1, 6), st.floats(0, 1000), st.floats(0, 1000))
def test_a_lagged_criterion_never_reads_a_row_after_as_of_minus_its_lag(
    tmp_path_factory: pytest.TempPathFactory, brands: list, lag: int, gmv: float, refund: float
) -> None:
    # rewriting every row dated after as_of − lag (the days refunds are still arriving) leaves refund_rate's value as it was
    batch = _history(brands)
    daily = batch.daily.copy()
    recent = daily["date"] > pd.Timestamp(AS_OF - timedelta(days=lag))
    daily.loc[recent, "gmv"] = gmv
    daily.loc[recent, "refund_amount"] = refund
    rewritten = MetricsBatch(daily, batch.quarantine, batch.missing_columns, batch.unknown_columns, batch.sources)

    def refund_values(frame: pd.DataFrame) -> dict[str, tuple[float, str]]:
        out = {}
        for brand, text in frame["criteria"].items():
            c = next(c for c in json.loads(text) if c["metric"] == "refund_rate")
            out[brand] = (c["value"], c["window"])
        return out

    before = refund_values(_decisions_of(tmp_path_factory.mktemp("a"), _lagged_playbook(lag), batch, len(brands)))
    after = refund_values(_decisions_of(tmp_path_factory.mktemp("b"), _lagged_playbook(lag), rewritten, len(brands)))
    assert before == after


# ---------------------------------------------------------------- backtests as known then


def _immature_refunds() -> tuple[MetricsBatch, pd.DataFrame]:
    """Brand b: gmv 200 a day and refunds that settle at 80 (40%), first imported the day after at 20 (10%) and
    restated to 80 by an export imported four days later (10:00 UTC): the revision record says so for every day."""
    first, last = date(2026, 1, 1), date(2026, 1, 15)
    batch = _batch(_rows("b", first, last, refund_amount=80.0))
    days = pd.date_range(first, last)
    revisions = pd.DataFrame(
        {
            "file": "store.csv",
            "digest": "d",
            "brand_id": "b",
            "date": days,
            "column_name": "refund_amount",
            "recorded_at": pd.to_datetime(days + pd.Timedelta(days=4, hours=10)).tz_localize("UTC"),
            "old_value": 20.0,
            "new_value": 80.0,
        }
    )
    return batch, revisions


def test_as_known_reads_values_as_they_stood_then() -> None:
    batch, revisions = _immature_refunds()
    from brandsteps.sources.imports.records import as_known

    # at noon Shanghai (04:00 UTC) on the 11th: days up to the 6th were restated (by the 10th 10:00 UTC), the 7th on are not yet
    seen = as_known(batch.daily, revisions, datetime(2026, 1, 11, 12, 0, tzinfo=SHANGHAI))
    refunds = dict(zip(seen["date"].dt.day, seen["refund_amount"], strict=True))
    assert [refunds[d] for d in (5, 6, 7, 8, 10)] == [80.0, 80.0, 20.0, 20.0, 20.0]
    assert batch.daily["refund_amount"].eq(80.0).all()  # the history itself is not changed


def _replays_of_immature_refunds(tmp_path: Path, last: date) -> list:
    """Brand b replayed as known then from the 6th to `last`, under a refund limit of 30% without a lag and 5 days back."""
    from brandsteps.engine.backtest import replay

    def book(lag: int) -> dict:
        criteria = [{"metric": "refund_rate", "op": "<=", "threshold": 0.3, "kind": "must", "lag_days": lag}]
        return simple_playbook(affiliate_trial={"criteria": criteria, "on_fail": "hold"})

    batch, revisions = _immature_refunds()
    return [
        replay(
            _portfolio(tmp_path / name, {"b": {}}, playbook=book(lag)),
            batch,
            date(2026, 1, 6),
            last,
            name,
            revisions=revisions,
        )
        for name, lag in (("without-lag", 0), ("with-lag", 5))
    ]


def test_backtest_as_known_lists_the_brand_that_advanced_on_immature_refunds(tmp_path: Path) -> None:
    from brandsteps.engine.backtest import differences

    runs = _replays_of_immature_refunds(tmp_path, date(2026, 1, 12))
    # the 6th's cycle (its deadline: the 7th 12:00 Shanghai, 04:00 UTC) sees the days restated by then (up to the 2nd,
    # restated the 6th 10:00 UTC) at 40% and the 3rd on at 10%: without the lag b reads the 4th–6th at 10%, passes on
    # the 6th and 7th and leaves affiliate_trial on the 7th; with the lag it never does
    out = {
        run.label: run.decisions[(run.decisions["action"] == "advance") & (run.decisions["stage"] == "affiliate_trial")]
        for run in runs
    }
    advanced = {label: frame["as_of"].dt.strftime("%Y-%m-%d").tolist() for label, frame in out.items()}
    assert advanced == {"without-lag": ["2026-01-07"], "with-lag": []}
    # 5 days back it reads the 1st at 40% (restated by then) and holds on its FAIL
    lagged = runs[1].decisions.set_index(runs[1].decisions["as_of"].dt.strftime("%Y-%m-%d"))
    assert lagged.at["2026-01-07", "reason"] == "refund_rate 40% > 30% (lagged 5 days)"
    diff = differences(runs[0], runs[1])
    assert diff[["brand_id", "as_of", "verdict_a", "verdict_b"]].astype({"as_of": str}).to_dict("records") == [
        {"brand_id": "b", "as_of": "2026-01-06", "verdict_a": "PASS", "verdict_b": "FAIL"}
    ]


def test_explains_revision_note_covers_a_lagged_criterions_earlier_days(tmp_path: Path) -> None:
    # a decision on the 20th with a 3-day window (18th–20th) whose refund_rate read the 16th–18th: a refund restated on the
    # 16th after the decision is one of its inputs, a restatement of the 15th is not
    from brandsteps.sources.imports.records import file_records, revised_inputs
    from brandsteps.sources.metrics_source import MetricsSource

    metrics = tmp_path / "metrics.csv"
    metrics.write_text("brand_id,date,gmv\n", encoding="utf-8")
    later = "2026-01-25T08:00:00+00:00"
    lines = [
        {
            "file": "s.csv",
            "digest": "d",
            "recorded_at": later,
            "brand_id": "b",
            "date": day,
            "column_name": "refund_amount",
            "old_value": 20,
            "new_value": 80,
        }
        for day in ("2026-01-15", "2026-01-16")
    ]
    file_records(metrics).revisions.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    criteria = [
        {"metric": "gmv", "window": "2026-01-18..2026-01-20"},
        {"metric": "refund_rate", "window": "2026-01-16..2026-01-18"},
    ]
    decision = {
        "brand_id": "b",
        "as_of": AS_OF,
        "days_in_stage": 20,
        "decided_at": datetime(2026, 1, 21, tzinfo=SHANGHAI),
        "criteria": json.dumps(criteria),
    }
    found = revised_inputs(MetricsSource.parse(str(metrics), tmp_path), decision, window_days=3)
    assert found["date"].dt.strftime("%Y-%m-%d").tolist() == ["2026-01-16"]


def test_backtest_report_names_the_move_made_on_immature_refunds(tmp_path: Path) -> None:
    # the same replay as above, as the terminal report shows it: the advance only the unlagged policy made, and its day
    from brandsteps.engine.backtest import differences, report_text

    runs = _replays_of_immature_refunds(tmp_path, date(2026, 1, 9))
    lines = report_text(runs, differences(runs[0], runs[1])).splitlines()
    assert lines[-4:] == [
        "  b from 2026-01-06 (4 days)",
        "    without-lag: affiliate_trial PASS -> hold: all must criteria pass; score 1 >= pass_score 1",
        "    with-lag: affiliate_trial FAIL -> hold: refund_rate 40% > 30% (lagged 5 days)",
        "    advanced only under without-lag: 2026-01-07 affiliate_trial -> public_traffic",
    ]
