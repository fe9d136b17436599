"""Data coverage: per stage, the deciding criteria brands had no value for, the base columns missing and the reports that fill them."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

from brandsteps.cli import main
from brandsteps.config import Portfolio, load_portfolio
from brandsteps.engine.cycle import decide_all, prepare_cohorts, run_day, window_metrics_for
from brandsteps.engine.window import compute_window_metrics
from brandsteps.ledger import Ledger
from brandsteps.sources.coverage import (
    FALLBACK_SOURCES,
    NO_REPORT,
    Coverage,
    artifact_rows,
    data_coverage,
    default_days,
    metric_reads,
    sources_from_profiles,
    table_rows,
    uniform_windows,
)
from brandsteps.sources.metrics_source import MetricsBatch, validate
from tests.conftest import simple_playbook, write_configs

AS_OF = date(2026, 1, 3)
TODAY = date(2026, 2, 1)

# affiliate_trial reads four base columns and a min_sample; public_traffic's paid_roi needs the ad
# report; its refund_rate guardrail watches every later stage (and graduated brands); the shadow
# criterion of self_broadcast never decides, so coverage leaves it out.
PLAYBOOK = simple_playbook(
    affiliate_trial={
        "criteria": [
            {"metric": "gmv", "op": ">=", "threshold": 300, "kind": "must"},
            {"metric": "commission_rate", "op": "<=", "threshold": 0.35, "kind": "should"},
            {
                "metric": "selling_affiliates",
                "op": ">=",
                "threshold": {"small": 10, "mid": 100, "large": 1000},
                "kind": "must",
            },
        ],
        "min_sample": {"orders": 10, "days_with_data": 2},
    },
    public_traffic={
        "criteria": [{"metric": "paid_roi", "op": ">=", "threshold": 1.5, "kind": "must"}],
        "guardrails": [{"metric": "refund_rate", "op": "<=", "threshold": 0.5, "kind": "must"}],
    },
    self_broadcast={
        "criteria": [
            {"metric": "gmv", "op": ">=", "threshold": 300, "kind": "must"},
            {"metric": "live_hours_per_day", "op": ">=", "threshold": 2, "kind": "should", "shadow": True},
        ]
    },
)
# a small and a mid brand in the first stage (two thresholds), one in each of the next two, one
# graduated (only guardrails watch it) and one exited (not evaluated: not counted)
COHORTS = pd.DataFrame(
    {
        "stage": ["affiliate_trial", "affiliate_trial", "public_traffic", "self_broadcast", "graduated", "exited"],
        "tier": ["small", "mid", "small", "small", "small", "small"],
    },
    index=pd.Index(list("abcdex"), name="brand_id"),
)
# the columns a 全店成交分析 daily export fills
STORE = {"gmv": 500.0, "orders": 10.0, "refund_amount": 50.0, "gmv_affiliate": 400.0}
EVERY_READ = {**STORE, "commission": 100.0, "active_affiliates": 20.0, "ad_spend": 100.0, "ad_gmv": 200.0}
WHOLE_STORE, AD, AFFILIATES = (
    "生意通 全店成交分析",
    "磁力金牛 account report",
    "快分销 效果明细 or 全店成交分析 账号构成「下载明细」",
)
COMMISSION = "生意通 全店成交分析 or 快分销 效果明细"
GUARD = "guardrail of public_traffic"


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory: pytest.TempPathFactory) -> Portfolio:
    configs = write_configs(tmp_path_factory.mktemp("coverage"), {b: {} for b in "abcdex"}, playbook=PLAYBOOK)
    return load_portfolio(configs, apply_env=False)


def daily_rows(rows: dict[str, dict[str, float]], days: int = 3) -> pd.DataFrame:
    """Each brand's values on each of the days to AS_OF, validated as a cycle reads them (uv and NaN for unmeasured)."""
    raw = pd.DataFrame(
        [
            {"brand_id": b, "date": pd.Timestamp(2026, 1, d), **v}
            for b, v in rows.items()
            for d in range(AS_OF.day - days + 1, AS_OF.day + 1)
        ]
    )
    return validate(raw, as_of=AS_OF, today=TODAY).daily


def coverage_of(portfolio: Portfolio, rows: dict[str, dict[str, float]]) -> Coverage:
    windows = uniform_windows(portfolio, COHORTS, AS_OF, default_days(portfolio))
    return data_coverage(portfolio, COHORTS, compute_window_metrics(daily_rows(rows), windows))


def as_tuples(rows: list[dict[str, str]]) -> list[tuple[str, ...]]:
    return [tuple(r.values()) for r in rows]


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        pytest.param(
            dict.fromkeys("abcdex", STORE),
            [
                ("affiliate_trial", "gmv >= ¥300.00", "must", "0 of 2", "-", "-"),
                # the whole-store export has no commission: no brand's commission_rate has a value
                ("affiliate_trial", "commission_rate <= 35%", "should", "2 of 2", "commission", COMMISSION),
                # one row for both tiers' thresholds, lowest first
                (
                    "affiliate_trial",
                    "selling_affiliates >= 10 / 100",
                    "must",
                    "2 of 2",
                    "active_affiliates",
                    AFFILIATES,
                ),
                ("affiliate_trial", "orders >= 10", "min_sample", "0 of 2", "-", "-"),
                ("affiliate_trial", "days_with_data >= 2", "min_sample", "0 of 2", "-", "-"),
                # the ad report's two columns, in the order paid_roi reads them
                ("public_traffic", "paid_roi >= 1.5", "must", "1 of 1", "ad_gmv, ad_spend", AD),
                # the shadow live_hours_per_day is not there: it never decides
                ("self_broadcast", "gmv >= ¥300.00", "must", "0 of 1", "-", "-"),
                ("self_broadcast", "refund_rate <= 50%", GUARD, "0 of 1", "-", "-"),
                # graduated brands are watched by the guardrails only; the exited brand is not counted
                ("graduated", "refund_rate <= 50%", GUARD, "0 of 1", "-", "-"),
            ],
            id="whole-store-export-only",
        ),
        pytest.param(
            {b: STORE for b in "acdex"},
            [
                # b has no row at all: every column it reads is missing for it
                ("affiliate_trial", "gmv >= ¥300.00", "must", "1 of 2", "gmv", WHOLE_STORE),
                # a lacks commission only, b both: a column only some lack says for how many
                (
                    "affiliate_trial",
                    "commission_rate <= 35%",
                    "should",
                    "2 of 2",
                    "commission, gmv_affiliate (1)",
                    f"commission: {COMMISSION}; gmv_affiliate: {WHOLE_STORE}",
                ),
                (
                    "affiliate_trial",
                    "selling_affiliates >= 10 / 100",
                    "must",
                    "2 of 2",
                    "active_affiliates",
                    AFFILIATES,
                ),
                ("affiliate_trial", "orders >= 10", "min_sample", "1 of 2", "orders", WHOLE_STORE),
                # a count of days has a value (0) even without rows: short, not unmeasured
                ("affiliate_trial", "days_with_data >= 2", "min_sample", "0 of 2", "-", "-"),
                ("public_traffic", "paid_roi >= 1.5", "must", "1 of 1", "ad_gmv, ad_spend", AD),
                ("self_broadcast", "gmv >= ¥300.00", "must", "0 of 1", "-", "-"),
                ("self_broadcast", "refund_rate <= 50%", GUARD, "0 of 1", "-", "-"),
                ("graduated", "refund_rate <= 50%", GUARD, "0 of 1", "-", "-"),
            ],
            id="a-brand-without-rows",
        ),
        pytest.param(
            dict.fromkeys("abcdex", {**STORE, "gmv_affiliate": 0.0, "commission": 10.0}),
            [
                ("affiliate_trial", "gmv >= ¥300.00", "must", "0 of 2", "-", "-"),
                # both columns measured, but affiliate GMV is 0: no report would help
                (
                    "affiliate_trial",
                    "commission_rate <= 35%",
                    "should",
                    "2 of 2",
                    "every column measured (a zero denominator or too few measured days)",
                    "-",
                ),
                (
                    "affiliate_trial",
                    "selling_affiliates >= 10 / 100",
                    "must",
                    "2 of 2",
                    "active_affiliates",
                    AFFILIATES,
                ),
                ("affiliate_trial", "orders >= 10", "min_sample", "0 of 2", "-", "-"),
                ("affiliate_trial", "days_with_data >= 2", "min_sample", "0 of 2", "-", "-"),
                ("public_traffic", "paid_roi >= 1.5", "must", "1 of 1", "ad_gmv, ad_spend", AD),
                ("self_broadcast", "gmv >= ¥300.00", "must", "0 of 1", "-", "-"),
                ("self_broadcast", "refund_rate <= 50%", GUARD, "0 of 1", "-", "-"),
                ("graduated", "refund_rate <= 50%", GUARD, "0 of 1", "-", "-"),
            ],
            id="zero-denominator",
        ),
    ],
)
def test_rows_per_stage_and_criterion(
    portfolio: Portfolio, rows: dict[str, dict[str, float]], expected: list[tuple[str, ...]]
) -> None:
    coverage = coverage_of(portfolio, rows)
    assert coverage.brands == {
        "affiliate_trial": 2,
        "public_traffic": 1,
        "self_broadcast": 1,
        "private_repurchase": 0,
        "channel_exclusive": 0,
        "graduated": 1,
    }
    assert as_tuples(table_rows(coverage, FALLBACK_SOURCES)) == expected


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        pytest.param(
            {b: STORE for b in "acdex"},
            [
                # most brands affected first; ties keep stage and config order
                (
                    "affiliate_trial",
                    "commission_rate <= 35%",
                    "should",
                    "2 of 2",
                    "commission, gmv_affiliate (1)",
                    f"commission: {COMMISSION}; gmv_affiliate: {WHOLE_STORE}",
                ),
                (
                    "affiliate_trial",
                    "selling_affiliates >= 10 / 100",
                    "must",
                    "2 of 2",
                    "active_affiliates",
                    AFFILIATES,
                ),
                ("affiliate_trial", "gmv >= ¥300.00", "must", "1 of 2", "gmv", WHOLE_STORE),
                ("affiliate_trial", "orders >= 10", "min_sample", "1 of 2", "orders", WHOLE_STORE),
                ("public_traffic", "paid_roi >= 1.5", "must", "1 of 1", "ad_gmv, ad_spend", AD),
            ],
            id="only-criteria-without-a-value",
        ),
        pytest.param(
            dict.fromkeys("abcdex", EVERY_READ),
            [("", "none missing: every deciding criterion had a value for all 5 brands", "", "", "", "")],
            id="none-missing",
        ),
    ],
)
def test_artifact_rows(
    portfolio: Portfolio, rows: dict[str, dict[str, float]], expected: list[tuple[str, ...]]
) -> None:
    assert as_tuples(artifact_rows(coverage_of(portfolio, rows), FALLBACK_SOURCES)) == expected


def test_a_run_that_decided_no_brand_counts_none(portfolio: Portfolio) -> None:
    # a rerun of a day has no due brands, hence no windows: nothing to count (the flow then publishes nothing)
    nobody = COHORTS.iloc[:0]
    coverage = data_coverage(
        portfolio,
        nobody,
        compute_window_metrics(MetricsBatch.empty().daily, uniform_windows(portfolio, nobody, AS_OF, 3)),
    )
    assert (coverage.total, len(coverage.rows)) == (0, 0)


@pytest.mark.parametrize(
    ("sources", "filled_by"),
    [
        pytest.param(FALLBACK_SOURCES, AD, id="built-in-table"),
        # a profile that fills one of the two: the other still says how to get it
        pytest.param({"ad_gmv": ["my-ads"]}, f"ad_gmv: my-ads; ad_spend: {NO_REPORT}", id="one-column-has-no-report"),
        pytest.param({"ad_gmv": ["a", "b"], "ad_spend": ["a", "b"]}, "a or b", id="two-reports-fill-both"),
    ],
)
def test_filled_by_names_the_reports_of_each_missing_column(
    portfolio: Portfolio, sources: dict[str, list[str]], filled_by: str
) -> None:
    rows = table_rows(coverage_of(portfolio, dict.fromkeys("abcdex", STORE)), sources)
    assert [r["filled by"] for r in rows if r["criterion"] == "paid_roi >= 1.5"] == [filled_by]


@pytest.mark.parametrize(
    ("name", "reads"),
    [
        pytest.param("gmv", ("gmv",), id="a-sum"),
        pytest.param("uv", ("uv_private", "uv_public_organic", "uv_public_paid"), id="uv-is-its-three-parts"),
        pytest.param("gpm", ("gmv", "uv_private", "uv_public_organic", "uv_public_paid"), id="a-ratio-over-uv"),
        pytest.param("paid_roi", ("ad_gmv", "ad_spend"), id="numerator-then-denominator"),
        pytest.param("burst_coefficient", ("gmv_affiliate",), id="burst-reads-affiliate-gmv-day-by-day"),
        pytest.param("live_hours_per_day", ("live_minutes",), id="live-hours"),
        pytest.param("store_rating", ("store_rating",), id="a-last-value"),
        pytest.param("days_with_data", (), id="a-count-of-rows-reads-no-column"),
        pytest.param("orders", ("orders",), id="a-min-sample-key"),
    ],
)
def test_metric_reads(name: str, reads: tuple[str, ...]) -> None:
    assert metric_reads(name) == reads


def test_sources_from_profiles_lists_each_columns_profiles_in_order() -> None:
    profiles = {
        "store": SimpleNamespace(columns={"gmv": {}, "orders": {}}),
        "accounts": SimpleNamespace(columns={"gmv": {}, "active_affiliates": {}}),
    }
    assert sources_from_profiles(profiles) == {
        "gmv": ("store", "accounts"),
        "orders": ("store",),
        "active_affiliates": ("accounts",),
    }


def test_report_sources_fall_back_to_the_known_reports_without_the_imports_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from brandsteps.config.settings import report_sources

    monkeypatch.setitem(sys.modules, "brandsteps.sources.imports", None)  # importing it now raises ImportError
    assert report_sources(tmp_path) is FALLBACK_SOURCES


def test_report_sources_name_a_user_profile(tmp_path: Path) -> None:
    pytest.importorskip("brandsteps.sources.imports")
    from brandsteps.config.settings import report_sources

    (tmp_path / "imports").mkdir()
    profile = {
        "match": ["日期", "直播时长(分钟)"],
        "date": "日期",
        "columns": {"live_minutes": {"header": "直播时长(分钟)", "unit": "minute"}},
    }
    (tmp_path / "imports" / "my-live.yaml").write_text(yaml.safe_dump(profile, allow_unicode=True), encoding="utf-8")
    assert "my-live" in report_sources(tmp_path)["live_minutes"]


def test_counts_equal_the_decisions_no_value_criteria(portfolio: Portfolio, tmp_path: Path) -> None:
    """What the cycle publishes (cycle_coverage over its windows) counts exactly the criteria its decisions recorded as no_value."""
    from tasks.artifacts import cycle_coverage

    configs = write_configs(
        tmp_path,
        {"a": {}, "b": {"tier": "mid"}, "c": {"stage": "public_traffic"}, "d": {"stage": "self_broadcast"}},
        playbook=PLAYBOOK,
    )
    mine = load_portfolio(configs, apply_env=False)
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    ledger.create()
    cohorts = prepare_cohorts(mine, ledger.read_state(), AS_OF)
    raw = pd.DataFrame([{"brand_id": b, "date": pd.Timestamp(2026, 1, d), **STORE} for b in "acd" for d in (1, 2, 3)])
    batch = validate(raw, as_of=AS_OF, today=TODAY)
    window = window_metrics_for(mine, batch, cohorts)
    decisions = decide_all(mine, cohorts, batch, window, AS_OF)
    recorded: dict[tuple[str, str, str], int] = {}
    for stage, criteria in zip(decisions["stage"], decisions["criteria"], strict=True):
        for c in json.loads(criteria):
            if not c["shadow"]:
                key = (stage, c["role"], c["metric"])
                recorded[key] = recorded.get(key, 0) + (c["result"] == "no_value")
    coverage = cycle_coverage(mine, cohorts, window)
    assert coverage is not None
    rows = coverage.rows[coverage.rows["role"] != "min_sample"]
    assert {(r.stage, r.role, r.metric): r.without_value for r in rows.itertuples()} == recorded
    assert (
        recorded[("affiliate_trial", "criterion", "gmv")] == 1
    )  # b has no rows: the counts are not all 0 or all brands


# ---------------------------------------------------------------- the command

CLI_PLAYBOOK = simple_playbook(
    affiliate_trial={"min_sample": {"orders": 10}},
    public_traffic={
        "criteria": [{"metric": "paid_roi", "op": ">=", "threshold": 1.5, "kind": "must"}],
        "guardrails": [{"metric": "refund_rate", "op": "<=", "threshold": 0.5, "kind": "must"}],
    },
)
HEADER = "Data coverage of 2 brands over 3 days, {first} to {last} (criteria without a value keep a brand INCONCLUSIVE)"


def day_one(tmp_path: Path) -> Path:
    """Two brands, an empty ledger, no metrics file yet."""
    return write_configs(tmp_path, {"a": {}, "n": {}}, playbook=CLI_PLAYBOOK)


def after_three_cycles(tmp_path: Path) -> Path:
    """a decided on days 1-3 (it advanced to public_traffic on day 3), then n configured: the ledger does not know it."""
    configs = write_configs(tmp_path, {"a": {}}, playbook=CLI_PLAYBOOK)
    ledger = Ledger("sqlite:///data/ledger.sqlite", tmp_path)
    ledger.create()
    history = validate(
        pd.DataFrame([{"brand_id": "a", "date": pd.Timestamp(2026, 1, d), **STORE} for d in range(1, 6)]),
        as_of=date(2026, 1, 5),
        today=TODAY,
    )
    for day in (1, 2, 3):
        run_day(load_portfolio(configs, apply_env=False), history, ledger, date(2026, 1, day), None)
    write_configs(tmp_path, {"n": {}}, playbook=CLI_PLAYBOOK)
    pd.DataFrame([{"brand_id": "a", "date": f"2026-01-0{d}", **STORE} for d in range(1, 6)]).to_csv(
        tmp_path / "data" / "metrics.csv", index=False
    )
    return configs


@pytest.mark.parametrize(
    ("setup", "argv", "expected"),
    [
        pytest.param(
            day_one,
            ["--as-of", "2026-01-03"],  # --days: the longest stage window, 3 days here
            [
                HEADER.format(first="2026-01-01", last="2026-01-03"),
                "no metrics at {root}/data/metrics.csv yet: every column is missing",
                # both brands count in their configured start stage
                "affiliate_trial: 2 brands",
                "  criterion       kind        no value  missing columns  filled by",
                f"  gmv >= ¥300.00  must        2 of 2    gmv              {WHOLE_STORE}",
                f"  orders >= 10    min_sample  2 of 2    orders           {WHOLE_STORE}",
                "public_traffic: no brands",
                "self_broadcast: no brands",
                "private_repurchase: no brands",
                "channel_exclusive: no brands",
            ],
            id="day-one-empty-ledger-no-metrics",
        ),
        pytest.param(
            after_three_cycles,
            ["--as-of", "2026-01-05", "--days", "3"],
            [
                HEADER.format(first="2026-01-03", last="2026-01-05"),
                # n has no rows; a left the stage
                "affiliate_trial: 1 brand",
                "  criterion       kind        no value  missing columns  filled by",
                f"  gmv >= ¥300.00  must        1 of 1    gmv              {WHOLE_STORE}",
                f"  orders >= 10    min_sample  1 of 1    orders           {WHOLE_STORE}",
                # a is where the ledger says, and no export it has fills the ad columns
                "public_traffic: 1 brand",
                "  criterion        kind  no value  missing columns   filled by",
                f"  paid_roi >= 1.5  must  1 of 1    ad_gmv, ad_spend  {AD}",
                "self_broadcast: no brands",
                "private_repurchase: no brands",
                "channel_exclusive: no brands",
            ],
            id="brands-where-the-ledger-says",
        ),
    ],
)
def test_coverage_command(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    setup,
    argv: list[str],
    expected: list[str],
) -> None:
    # the table of the known reports: the imports package's profile names are its own to change
    monkeypatch.setattr("brandsteps.config.settings.report_sources", lambda configs_dir: FALLBACK_SOURCES)
    configs = setup(tmp_path)
    assert main(["coverage", "--configs", str(configs), *argv]) == 0
    assert capsys.readouterr().out.splitlines() == [line.replace("{root}", str(tmp_path)) for line in expected]


def test_coverage_command_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("brandsteps.config.settings.report_sources", lambda configs_dir: FALLBACK_SOURCES)
    configs = after_three_cycles(tmp_path)
    assert (
        main(["coverage", "--configs", str(configs), "--as-of", "2026-01-05", "--days", "3", "--format", "json"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert {k: v for k, v in out.items() if k != "stages"} == {
        "as_of": "2026-01-05",
        "from": "2026-01-03",
        "days": 3,
        "brands": 2,
        "note": None,
    }
    assert [(s["stage"], s["brands"]) for s in out["stages"]] == [
        ("affiliate_trial", 1),
        ("public_traffic", 1),
        ("self_broadcast", 0),
        ("private_repurchase", 0),
        ("channel_exclusive", 0),
    ]
    assert out["stages"][1]["criteria"] == [
        {
            "criterion": "paid_roi >= 1.5",
            "role": "criterion",
            "source_stage": "public_traffic",
            "metric": "paid_roi",
            "op": ">=",
            "threshold": "1.5",
            "kind": "must",
            "brands": 1,
            "without_value": 1,
            "missing_columns": {"ad_gmv": 1, "ad_spend": 1},
            "measured_without_value": 0,
            "filled_by": {"ad_gmv": [AD], "ad_spend": [AD]},
        }
    ]


def test_coverage_command_refuses_zero_days(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["coverage", "--configs", str(day_one(tmp_path)), "--days", "0"])
    assert info.value.code == 2
