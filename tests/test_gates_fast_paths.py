"""Gate engine's fast paths give exactly what the plain computations give: one stage's code, text lookups, gathers."""

from __future__ import annotations

import warnings
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brandsteps.catalogue import BASE_COLUMNS, GRADUATED, METRICS, STAGE_IDS, TIERS
from brandsteps.config import load_portfolio
from brandsteps.engine.evidence import FACTOR_COLUMNS, fmt, per_distinct
from brandsteps.engine.gates import (
    EVALUATED,
    GUARD_COLUMNS,
    _codes,
    _factors,
    _metric_rows,
    _metric_table,
    _shared_texts,
    _str,
    _texts,
    compiled,
    gate_cohort,
    gate_stage,
)
from tests.conftest import write_configs

AS_OF = date(2026, 3, 10)


def _cohort(ids: list[str], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(ids)
    awaiting = rng.random(n) < 0.2
    return pd.DataFrame(
        {
            "tier": np.array([*TIERS, "unknown"], dtype=object)[rng.integers(0, 4, n)],
            "paused": rng.random(n) < 0.1,
            "awaiting": awaiting,
            "awaiting_since": np.where(awaiting, "2026-03-01", None),
            "days_in_stage": rng.integers(1, 40, n),
            "pass_streak": rng.integers(0, 4, n),
            "stage_entered_on": pd.Timestamp("2026-02-01") + pd.to_timedelta(rng.integers(0, 30, n), unit="D"),
            "data_error": np.where(rng.random(n) < 0.1, "row 3 (2026-03-09): orders negative", ""),
            "policy_version": np.array(["v1", "v2"], dtype=object)[rng.integers(0, 2, n)],
            **{c: rng.integers(0, 3, n) for c in GUARD_COLUMNS},
        },
        index=pd.Index(ids, name="brand_id", dtype=object),
    )


def _metrics(ids: list[str], seed: int) -> pd.DataFrame:
    """Every sample sum large (most samples met), metrics spread around the thresholds, a few missing."""
    rng = np.random.default_rng(seed)
    sums = {f"sum_{c}": rng.uniform(1e3, 1e7, len(ids)) for c in (*BASE_COLUMNS, "uv")}
    values = {m: rng.uniform(0, 1.2, len(ids)) * 10.0 ** rng.integers(-1, 6, len(ids)) for m in METRICS}
    # the repository playbook reads refund_rate and commission_rate 7 days back: columns of their own
    values.update({f"{m}@lag7": rng.uniform(0, 1.2, len(ids)) for m in ("refund_rate", "commission_rate")})
    frame = pd.DataFrame({**sums, **values, "days_with_data": 28.0}, index=pd.Index(ids, name="brand_id", dtype=object))
    frame = frame.mask(rng.random(frame.shape) < 0.01)
    return frame


@pytest.fixture
def portfolio(tmp_path: Path):
    # the repository playbook; some brands with overrides (their own policy variants)
    brands: dict[str, dict] = {f"b{i}": {} for i in range(60)}
    for i in range(0, 60, 7):
        brands[f"b{i}"] = {"gates": {"affiliate_trial": {"criteria": [{"metric": "gmv", "op": ">=", "threshold": 10}]}}}
    for i in range(3, 60, 11):
        brands[f"b{i}"] = {"requires_approval": ["public_traffic", "channel_exclusive"]}
    write_configs(tmp_path, brands)
    return load_portfolio(tmp_path / "configs", apply_env=False)


EVIDENCE_COLUMNS = (
    "row",
    "role",
    "source_stage",
    "metric",
    "op",
    "threshold",
    "kind",
    "weight",
    "shadow",
    "value",
    "result",
)


def _same_decided(a, b) -> None:
    pd.testing.assert_frame_equal(a.decisions, b.decisions, check_exact=True)
    pd.testing.assert_frame_equal(a.factors, b.factors, check_exact=True)
    for name in EVIDENCE_COLUMNS:
        x, y = getattr(a.evidence, name), getattr(b.evidence, name)
        assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), name


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("stage", [*STAGE_IDS, GRADUATED])
def test_one_stage_decides_as_a_cohort_of_that_stage(portfolio, stage: str, seed: int) -> None:
    # gate_stage knows its one stage's code; gate_cohort looks each brand's stage up: same decisions
    ids = [f"b{i}" for i in range(60)]
    cohort, metrics = _cohort(ids, seed), _metrics(ids[:50], seed)  # ten brands without metrics
    fast = gate_stage(portfolio, stage, cohort, metrics, AS_OF)
    general = gate_cohort(portfolio, cohort, np.full(len(ids), stage, dtype=object), metrics, AS_OF)
    _same_decided(fast, general)
    assert "ERROR" in set(fast.decisions["verdict"]) and fast.decisions["verdict"].nunique() >= 3


@pytest.mark.parametrize("as_text", [False, True])
def test_codes_are_categorical_codes(as_text: bool) -> None:
    values = pd.Series(["mid", "small", None, "large", "huge", "mid"], dtype="str" if as_text else object)
    with warnings.catch_warnings():  # pandas deprecates values outside the categories, and still gives -1
        warnings.simplefilter("ignore")
        expected = pd.Categorical(values.to_numpy(), categories=list(TIERS)).codes
    assert _codes(values, TIERS).tolist() == expected.astype(np.int64).tolist() == [1, 0, -1, 2, -1, 1]


@pytest.mark.parametrize("missing_row", [False, True])
def test_metric_table_gathers_what_reindexing_gives(missing_row: bool) -> None:
    ids = [f"b{i}" for i in range(30)]
    metrics = _metrics(ids, 4)
    rows = np.arange(29, -1, -3)
    if missing_row:
        rows[2] = -1
    names = ["gmv", "not_a_column", "refund_rate", "sum_orders"]
    table = _metric_table(metrics, rows, names)
    # the same as pandas: the named columns (NaN for one metrics lacks) at each row, a row -1 all NaN
    expected = metrics.reindex(columns=names).to_numpy(dtype=float)[rows]
    expected[rows < 0] = np.nan
    assert np.array_equal(table, expected, equal_nan=True)


def test_factors_gathered_equal_factors_reindexed() -> None:
    ids = [f"b{i}" for i in range(20)]
    metrics = _metrics(ids, 5)
    wanted = pd.Index([*ids[::-2], "stranger"], dtype=object)
    rows = metrics.index.get_indexer(wanted)
    reindexed = metrics.reindex(index=wanted, columns=list(FACTOR_COLUMNS)).reset_index(drop=True)
    pd.testing.assert_frame_equal(_factors(metrics, rows, wanted), reindexed, check_exact=True)
    # a factor column that is not float64 takes the plain path, dtype and all
    as_int = metrics.assign(uv=np.arange(20))
    pd.testing.assert_frame_equal(
        _factors(as_int, rows, wanted),
        as_int.reindex(index=wanted, columns=list(FACTOR_COLUMNS)).reset_index(drop=True),
    )


def test_per_distinct_builds_what_each_row_would_build() -> None:
    rng = np.random.default_rng(6)
    streak, need, score = rng.integers(0, 5, 500), rng.integers(1, 4, 500), rng.choice([0.5, 1.0, 2 / 3, np.nan], 500)

    def build(s: np.ndarray, k: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.asarray("PASS " + _str(s) + " of " + _str(k) + " score " + fmt(x), dtype=object)

    assert per_distinct(build, streak, need, score).tolist() == build(streak, need, score).tolist()


@pytest.mark.parametrize(
    "values",
    [
        pd.Series(["", "row 1: bad", ""], dtype=object),
        pd.Series(["", None, "x"], dtype=object),
        pd.Series(["", np.nan, 3], dtype=object),
        pd.Series(["", "x"], dtype="str"),
        pd.Series([], dtype=object),
    ],
)
def test_texts_equal_fillna_astype_str(values: pd.Series) -> None:
    assert _texts(values).tolist() == values.fillna("").astype(str).to_numpy(dtype=object).tolist()


@pytest.mark.parametrize("dtype", [object, "str"])
def test_shared_texts_equal_to_numpy(dtype: object) -> None:
    values = pd.Series(["v1", "v2", "v1", None], dtype=dtype)
    got, expected = _shared_texts(values, values.factorize()), values.to_numpy()
    assert got.dtype == expected.dtype and [str(v) for v in got] == [str(v) for v in expected]
    full = values.iloc[:3]
    assert _shared_texts(full, full.factorize()).tolist() == full.to_numpy().tolist() == ["v1", "v2", "v1"]


@pytest.mark.parametrize("stage", ["affiliate_trial", "public_traffic", GRADUATED])
def test_rule_sets_read_from_policy_versions_equal_rule_sets_by_brand_id(portfolio, stage: str) -> None:
    # the portfolio's own versions name the variants; versions it does not know fall back to the ids
    comp = compiled(portfolio)
    ids = pd.Index([f"b{i}" for i in range(60)], name="brand_id", dtype=object)
    codes = np.full(len(ids), EVALUATED.index(stage), dtype=np.int64)
    by_id = comp.rule_sets(ids, codes)
    assert comp.variants == 3 and len(np.unique(by_id)) == 3
    own = pd.Series([portfolio.policy_version(b) for b in ids], index=ids, dtype="str")
    unknown = pd.Series(["v1", "v2"] * 30, index=ids, dtype=object)
    assert np.array_equal(comp.rule_sets_by_version(ids, own.factorize(), codes), by_id)
    assert np.array_equal(comp.rule_sets_by_version(ids, unknown.factorize(), codes), by_id)
    # and the decisions: the same but for the version each one records
    cohort, metrics = _cohort(list(ids), 0), _metrics(list(ids), 0)
    by_version = gate_stage(portfolio, stage, cohort.assign(policy_version=own), metrics, AS_OF)
    looked_up = gate_stage(portfolio, stage, cohort, metrics, AS_OF)
    _same_decided(
        by_version,
        replace(looked_up, decisions=looked_up.decisions.assign(policy_version=by_version.decisions["policy_version"])),
    )


@pytest.mark.parametrize(
    ("window_row", "expected"),
    [
        (None, [2, -1, 0]),  # no hint: looked up
        ([2, 3, 0], [2, -1, 0]),  # a wrong hint (b9 is not at row 3): looked up
        ([2, 1, 0], [2, 1, 0]),  # the ids there are the cohort's: used
        ([2, -1, 0], [2, -1, 0]),  # a brand without a row: looked up
    ],
)
def test_metric_rows_use_window_rows_only_where_the_ids_match(
    window_row: list[int] | None, expected: list[int]
) -> None:
    metrics = pd.DataFrame({"gmv": [1.0, 2.0, 3.0, 4.0]}, index=pd.Index(["b0", "b7", "b3", "b8"], dtype=object))
    cohort = pd.DataFrame(
        {"tier": ["small"] * 3}, index=pd.Index(["b3", "b9" if window_row != [2, 1, 0] else "b7", "b0"], dtype=object)
    )
    if window_row is not None:
        cohort["window_row"] = window_row
    rows = _metric_rows(metrics, cohort)
    assert rows.tolist() == expected == metrics.index.get_indexer(cohort.index).tolist()
