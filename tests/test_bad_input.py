"""Bad-input corpus (tests/bad_input/): every broken config or metrics file has one exact, readable outcome.

Each case folder is laid over a valid project of three brands (a, b, c; the simple playbook) whose
ledger already holds two days. A broken config must be refused by `brandsteps run` with exit 2 and
exactly the listed lines, and leave the ledger as it was. A broken metrics file is either refused
as a whole (one message naming the file and the reason; ledger unchanged) or its bad rows are
quarantined with their reasons while every other brand is decided normally.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest

import brandsteps.cli as cli
from brandsteps.config import load_portfolio
from brandsteps.engine.cycle import metrics_start, run_day
from brandsteps.ledger import Ledger
from brandsteps.sources.metrics_source import MetricsReadError, MetricsSource, load_metrics
from tests.bad_input.make_corpus import HEADER, base_rows
from tests.conftest import simple_playbook, write_configs
from tests.ledger_dump_helpers import ledger_dump

CORPUS = Path(__file__).parent / "bad_input"
AS_OF, TODAY = date(2026, 1, 3), date(2026, 1, 4)
B = "configs/brands/b.yaml"
STEPS = "configs/steps.yaml"
ONB = "configs/onboarding.yaml"
ONE_OF_STAGES = (
    "must be one of 'affiliate_trial', 'public_traffic', 'self_broadcast', 'private_repurchase' or 'channel_exclusive'"
)
# a and c are untouched: their 3rd PASS day in a row (2 needed, the 1st day was too early) advances them.
GOOD = ("PASS", "advance", "all must criteria pass; score 1 >= pass_score 1")

CONFIG_CASES: list[tuple[str, list[str]]] = [
    # YAML syntax: the parser's line and column, in the user's terms.
    ("cfg_malformed_yaml", [f"{B}: invalid YAML (line 3, column 5): did not find expected ',' or ']'"]),
    (
        "cfg_tab_indent",
        [
            f"{B}: invalid YAML (line 4, column 1): found character that cannot start any token; indent with spaces, not tabs"
        ],
    ),
    ("cfg_duplicate_key", [f"{B}: invalid YAML (line 6, column 1): duplicate key 'tier'"]),  # tier is on lines 3 and 6
    ("cfg_empty_brand", [f"{B}: the file is empty"]),
    ("cfg_only_comments", [f"{B}: the file has no settings (only comments or blank lines)"]),  # was "not NoneType"
    ("cfg_empty_playbook", [f"{STEPS}: the file is empty"]),  # whitespace only
    ("cfg_list_not_mapping", [f"{B}: must be a mapping of keys to values, not a list"]),
    ("cfg_scalar_not_mapping", [f"{ONB}: must be a mapping of keys to values, not a single value"]),
    # the safe loader knows no Python tags: nothing is constructed, let alone run
    (
        "cfg_python_tag",
        [
            f"{B}: invalid YAML (line 1, column 11): tag '!!python/object/apply:os.system' is not allowed (configs are plain YAML: no tags, nothing is executed)"
        ],
    ),
    # 9^8 aliases are shared references, not copies: validation stops at the first wrong type, no blow-up
    (
        "cfg_billion_laughs",
        [
            f"{B}: brand_id: is required",
            f"{B}: name: must be text",
            f"{B}: tier: is required",
            f"{B}: category: is required",
            f"{B}: start_date: is required",
            *(f"{B}: {k}: unknown key" for k in "abcdefg"),
        ],
    ),
    (
        "cfg_gbk_brand",
        [f"{B}: not UTF-8 text (byte 22); save the file as UTF-8"],
    ),  # byte 22 is the first byte of 山 in GBK
    ("cfg_utf16_brand", [f"{B}: UTF-16 text; save the file as UTF-8"]),
    # brand fields
    ("cfg_unknown_brand_key", [f"{B}: colour: unknown key"]),
    ("cfg_wrong_type_tier", [f"{B}: tier: must be one of 'small', 'mid' or 'large' (got 3)"]),
    (
        "cfg_bad_start_date",
        [f"{B}: start_date: must be a date like 2026-01-31 (got '2026-02-30')"],
    ),  # was a ValueError traceback
    ("cfg_paused_not_bool", [f"{B}: paused: must be true or false"]),
    ("cfg_unknown_stage", [f"{B}: stage: {ONE_OF_STAGES} (got 'launch')"]),
    ("cfg_override_unknown_stage", [f"{B}: gates.launch: {ONE_OF_STAGES} (got 'launch')"]),
    ("cfg_approval_unknown_stage", [f"{B}: requires_approval[0]: {ONE_OF_STAGES} (got 'launch')"]),
    (
        "cfg_override_unknown_metric",
        [
            f"{B}: gates.affiliate_trial.criteria[0].metric: unknown metric 'roi' (known: {', '.join(__import__('brandsteps.catalogue').catalogue.METRICS)})"
        ],
    ),
    (
        "cfg_override_threshold_range",
        [
            f"{B}: gates.affiliate_trial.criteria[0]: threshold 30 is out of range for refund_rate (a share is at most 1)"
        ],
    ),
    ("cfg_brand_id_mismatch", ["configs/brands/zeta.yaml: brand_id: 'zed' must equal the file name 'zeta'"]),
    ("cfg_duplicate_brand_id", ["configs/brands/a.yml: brand_id: 'a' is defined twice"]),  # a.yaml sorts first and wins
    ("cfg_path_brand_id", ["configs/brands/x.yaml: brand_id: must be a slug of lowercase letters, digits and dashes"]),
    (
        "cfg_injection_brand_id",
        ["configs/brands/evil.yaml: brand_id: must be a slug of lowercase letters, digits and dashes"],
    ),
    (
        "cfg_uppercase_brand_id",
        ["configs/brands/Acme.yaml: brand_id: must be a slug of lowercase letters, digits and dashes"],
    ),
    ("cfg_name_too_long", [f"{B}: name: is too long (at most 200 characters)"]),  # 201 characters
    # playbook: one field changed from the valid simple playbook; stages[i] is the i-th stage
    ("cfg_stage_unknown_key", [f"{STEPS}: stages[0].colour: unknown key"]),
    ("cfg_window_days_text", [f"{STEPS}: stages[0].window_days: must be a whole number (got 'seven')"]),
    ("cfg_window_days_huge", [f"{STEPS}: stages[1].window_days: must be <= 365"]),
    ("cfg_consecutive_zero", [f"{STEPS}: stages[0].consecutive_passes: must be >= 1"]),
    ("cfg_pass_score_range", [f"{STEPS}: stages[2].pass_score: must be <= 1.0"]),
    ("cfg_max_below_min", [f"{STEPS}: stages[0]: max_days_in_stage must not be below min_days_in_stage"]),  # 1 < 2
    (
        "cfg_unknown_metric",
        [
            f"{STEPS}: stages[0].criteria[0].metric: unknown metric 'roi' (known: {', '.join(__import__('brandsteps.catalogue').catalogue.METRICS)})"
        ],
    ),
    (
        "cfg_threshold_share_range",
        [f"{STEPS}: stages[0].criteria[0]: threshold 1.5 is out of range for refund_rate (a share is at most 1)"],
    ),
    (
        "cfg_threshold_negative",
        [f"{STEPS}: stages[0].criteria[0]: threshold -5 is out of range for gmv (must be >= 0)"],
    ),
    ("cfg_threshold_nan", [f"{STEPS}: stages[0].criteria[0].threshold: must be a finite number"]),
    (
        "cfg_threshold_text",
        [f"{STEPS}: stages[0].criteria[0].threshold: must be a number or a map {{small, mid, large}} of numbers"],
    ),  # '300' is quoted
    (
        "cfg_threshold_tier_missing",
        [f"{STEPS}: stages[0].criteria[0].threshold: a tier map needs exactly small, mid and large (missing large)"],
    ),
    ("cfg_bad_op", [f"{STEPS}: stages[0].criteria[0].op: must be one of '>=', '>', '<=' or '<' (got '=>')"]),
    ("cfg_stage_id_unknown", [f"{STEPS}: stages[3].id: {ONE_OF_STAGES} (got 'loyalty')"]),
    (
        "cfg_stages_out_of_order",
        [
            f"{STEPS}: stages: must list the five stages in order: affiliate_trial, public_traffic, self_broadcast, private_repurchase, "
            "channel_exclusive (found: public_traffic, affiliate_trial, self_broadcast, private_repurchase, channel_exclusive)"
        ],
    ),
    # deployment
    ("cfg_password_in_yaml", [f"{ONB}: ledger: must not contain a password; set BRANDSTEPS_LEDGER_PASSWORD instead"]),
    (
        "cfg_metrics_password_in_yaml",
        [
            f"{ONB}: metrics.url: must not contain a password; set BRANDSTEPS_METRICS (the whole URL) in the environment instead"
        ],
    ),
    ("cfg_bad_timezone", [f"{ONB}: timezone: unknown timezone 'Mars/Olympus' (e.g. Asia/Shanghai)"]),
    (
        "cfg_bad_cron",
        [f"{ONB}: schedule: must be a 5-field cron expression like '0 9 * * *' (got 'every day at nine')"],
    ),
    (
        "cfg_table_injection",
        [f"{ONB}: metrics.table: must be a table name (letters, digits and _, optionally schema.table)"],
    ),
]

M = "data/metrics.csv"
P = "data/metrics.parquet"
METRIC_REJECTED: list[tuple[str, str, str]] = [
    ("met_missing_date_column", M, "the metrics table has no date column"),
    (
        "met_chinese_headers",
        M,
        "the metrics table has no brand_id or date column (this looks like a Kuaishou 生意通 export: "
        "convert it with `brandsteps import-kuaishou FILE --brand ID`)",
    ),
    (
        "met_ragged_row",
        M,
        "not a readable CSV file (Error tokenizing data. C error: Expected 5 fields in line 7, saw 6)",
    ),
    (
        "met_duplicate_header",
        M,
        "column gmv appears more than once in the header",
    ),  # pandas would silently rename it gmv.1
    ("met_latin1_csv", M, "unknown text encoding (use UTF-8)"),  # é in Latin-1 is neither UTF-8 nor GB18030
    ("met_zero_byte_parquet", P, "empty file (0 bytes), not a Parquet file"),
    (
        "met_corrupt_parquet",
        P,
        "not a readable Parquet file (Parquet magic bytes not found in footer. Either the file is corrupted or this is not a parquet file.)",
    ),
]

ROW7 = "row 7 (2026-01-03): "  # brand b's row of 2026-01-03 is CSV line 7 (line 1 is the header)
METRIC_QUARANTINED: list[tuple[str, list[tuple[int, str, str]], dict[str, tuple[str, str, str]]]] = [
    (
        "met_text_in_number",
        [(7, "b", "gmv: 'abc' is not a number")],
        {"b": ("ERROR", "hold", f"data failed validation: {ROW7}gmv: 'abc' is not a number")},
    ),
    (
        "met_bool_in_number",
        [(7, "b", "orders: 'true' is not a number")],
        {"b": ("ERROR", "hold", f"data failed validation: {ROW7}orders: 'true' is not a number")},
    ),
    (
        "met_negative_value",
        [(7, "b", "orders: negative value -3")],
        {"b": ("ERROR", "hold", f"data failed validation: {ROW7}orders: negative value -3")},
    ),
    (
        "met_rating_above_5",
        [(7, "b", "store_rating 7.5 is above 5")],
        {"b": ("ERROR", "hold", f"data failed validation: {ROW7}store_rating 7.5 is above 5")},
    ),
    (
        "met_inf",
        [(7, "b", "gmv: infinite value")],
        {"b": ("ERROR", "hold", f"data failed validation: {ROW7}gmv: infinite value")},
    ),
    (
        "met_huge_value",
        [(7, "b", "gmv: implausibly large value 1e+15")],
        {"b": ("ERROR", "hold", f"data failed validation: {ROW7}gmv: implausibly large value 1e+15")},
    ),
    # every problem of the row is listed, in column order of the checks
    (
        "met_several_problems",
        [(7, "b", "orders: 'abc' is not a number; gmv: negative value -1; store_rating 9 is above 5")],
        {
            "b": (
                "ERROR",
                "hold",
                f"data failed validation: {ROW7}orders: 'abc' is not a number; gmv: negative value -1; store_rating 9 is above 5",
            )
        },
    ),
    # neither copy of a brand/day can be trusted over the other, so both go
    (
        "met_duplicate_brand_day",
        [(7, "b", "duplicate row for this brand and day"), (11, "b", "duplicate row for this brand and day")],
        {
            "b": (
                "ERROR",
                "hold",
                f"data failed validation: {ROW7}duplicate row for this brand and day; row 11 (2026-01-03): duplicate row for this brand and day",
            )
        },
    ),
    # an unreadable date cannot be placed outside the window, so it counts against the brand
    (
        "met_bad_date",
        [(7, "b", "date '03/01/2026' is not a date (use YYYY-MM-DD)")],
        {
            "b": (
                "ERROR",
                "hold",
                "data failed validation: row 7 (no date): date '03/01/2026' is not a date (use YYYY-MM-DD)",
            )
        },
    ),
    # a future row is quarantined but lies outside b's window ending on as_of: b is decided on its real rows
    ("met_future_date", [(11, "b", "date 2026-01-09 is in the future")], {}),
    # Parquet rows count from 1; the NaN of 2 January is "not measured", the inf of 3 January is an error
    (
        "met_parquet_nan_inf",
        [(6, "b", "gmv: infinite value")],
        {"b": ("ERROR", "hold", "data failed validation: row 6 (2026-01-03): gmv: infinite value")},
    ),
    # rows that belong to no valid brand are set aside; every configured brand is decided normally
    ("met_path_brand_id", [(11, "../x", "brand_id '../x' is not a slug [a-z0-9-]")], {}),
    (
        "met_injection_brand_id",
        [(11, "a'; DROP TABLE decisions; --", 'brand_id "a\'; DROP TABLE decisions; --" is not a slug [a-z0-9-]')],
        {},
    ),
    ("met_empty_brand_id", [(11, None, "brand_id '<empty>' is not a slug [a-z0-9-]")], {}),
    # NaN is a missing value ("not measured", never 0): b's window sum is 500 + 500 = 1000 >= 300, still a pass
    ("met_nan_text", [], {}),
    ("met_thousands_separator", [], {}),  # "1,500" is read as 1500
    ("met_utf16_csv", [], {}),  # Excel's UTF-16 "Unicode text" is decoded, not refused
    ("met_unknown_brand", [], {}),  # a brand without a config is ignored (counted in the cycle summary)
    # a missing column is "not measured": every brand is INCONCLUSIVE, never decided on a 0
    ("met_missing_gmv_column", [], {k: ("INCONCLUSIVE", "hold", "no value: gmv") for k in "abc"}),
    ("met_header_only", [], {k: ("INCONCLUSIVE", "hold", "no value: gmv") for k in "abc"}),  # was a numpy traceback
]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three brands, valid metrics for 1–3 January, and the ledger holding 1 and 2 January (built once)."""
    root = tmp_path_factory.mktemp("template")
    configs = write_configs(root, {"a": {}, "b": {}, "c": {}}, playbook=simple_playbook())
    (root / "data").mkdir(exist_ok=True)
    (root / M).write_text("\n".join([HEADER, *base_rows()]) + "\n", encoding="utf-8")
    ledger = Ledger("sqlite:///data/ledger.sqlite", root)
    ledger.create()
    portfolio = load_portfolio(configs, apply_env=False)
    history = load_metrics(MetricsSource(path=root / M), as_of=date(2026, 1, 2), today=TODAY)
    for day in (1, 2):
        run_day(portfolio, history, ledger, date(2026, 1, day), None)
    ledger.dispose()
    return root


@pytest.fixture
def project(template: Path, tmp_path: Path) -> tuple[Path, Ledger]:
    root = tmp_path / "project"
    shutil.copytree(template, root)
    ledger = Ledger("sqlite:///data/ledger.sqlite", root)
    assert ledger.count_decisions() == 6  # 3 brands × 2 days: a rejected input must leave all six
    return root, ledger


def test_every_corpus_case_has_an_expected_outcome() -> None:
    on_disk = {p.name for p in CORPUS.iterdir() if p.is_dir() and not p.name.startswith("__")}
    listed = {c for c, *_ in CONFIG_CASES} | {c for c, *_ in METRIC_REJECTED} | {c for c, *_ in METRIC_QUARANTINED}
    assert on_disk == listed
    assert len(listed) >= 40


@pytest.mark.parametrize(("case", "expected"), CONFIG_CASES, ids=[c for c, _ in CONFIG_CASES])
def test_broken_config_is_refused_and_ledger_unchanged(
    project, case: str, expected: list[str], capsys, monkeypatch
) -> None:
    root, ledger = project
    before = ledger_dump(ledger)
    shutil.copytree(CORPUS / case, root, dirs_exist_ok=True)

    # run starts its temporary server while it checks the brand files: a refused folder stops it before any flow
    server: list[str] = []

    @contextmanager
    def temporary_server(start_now: bool = True) -> Iterator[None]:
        server.append("started")
        try:
            yield None
        finally:
            server.append("stopped")

    def flow_ran(*_: object, **__: object) -> None:
        raise AssertionError("the broken config was accepted")

    monkeypatch.setattr("brandsteps.cli.run.prefect_api", temporary_server)
    monkeypatch.setattr("flows.onboarding_cycle.onboarding_cycle", flow_ran)
    code = cli.main(["run", "--as-of", AS_OF.isoformat(), "--configs", str(root / "configs")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.splitlines() == [f"{len(expected)} configuration problem(s):", *(f"  {line}" for line in expected)]
    # steps.yaml and onboarding.yaml are read before the server starts; brand files while it starts
    only_brand_files = all("/brands/" in line.partition(": ")[0] for line in expected)
    assert server == (["started", "stopped"] if only_brand_files else [])
    assert "Traceback" not in err
    assert ledger_dump(ledger) == before
    assert not (root / "pwned").exists()


def _cycle(root: Path, ledger: Ledger, rel: str):
    """The cycle's core steps in the flow's order: configs, metrics from the window start, decide, record."""
    portfolio = load_portfolio(root / "configs", apply_env=False)
    batch = load_metrics(
        MetricsSource(path=root / rel), as_of=AS_OF, today=TODAY, start=metrics_start(portfolio, AS_OF)
    )
    run_day(portfolio, batch, ledger, AS_OF, None)
    return batch


@pytest.mark.parametrize(("case", "rel", "message"), METRIC_REJECTED, ids=[c for c, *_ in METRIC_REJECTED])
def test_unreadable_metrics_are_refused_and_ledger_unchanged(project, case: str, rel: str, message: str) -> None:
    root, ledger = project
    (root / M).unlink()
    shutil.copytree(CORPUS / case, root, dirs_exist_ok=True)
    before = ledger_dump(ledger)
    with pytest.raises(MetricsReadError) as info:
        _cycle(root, ledger, rel)
    assert str(info.value) == f"{root / rel}: {message}"  # names the file, then the reason
    assert ledger_dump(ledger) == before


@pytest.mark.parametrize(
    ("case", "quarantined", "decided"), METRIC_QUARANTINED, ids=[c for c, *_ in METRIC_QUARANTINED]
)
def test_bad_rows_are_quarantined_and_others_decided(project, case: str, quarantined: list, decided: dict) -> None:
    root, ledger = project
    (root / M).unlink()
    shutil.copytree(CORPUS / case, root, dirs_exist_ok=True)
    rel = P if (root / P).exists() else M
    batch = _cycle(root, ledger, rel)
    q = batch.quarantine
    got = list(
        zip(
            q["row"].astype(int),
            q["brand_id"].astype(object).where(q["brand_id"].notna(), None),
            q["reason"],
            strict=True,
        )
    )
    assert got == quarantined
    assert set(batch.quarantine["source"]) <= {str(root / rel)}  # each row names its file
    rows = ledger.decisions_for(AS_OF).set_index("brand_id")
    outcome = {b: (r.verdict, r.action, r.reason) for b, r in rows.iterrows()}
    assert outcome == {b: decided.get(b, GOOD) for b in "abc"}  # exactly one decision per brand
