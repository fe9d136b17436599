"""Cycle helpers' fast paths give exactly what the plain computations give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brandsteps.engine.cycle import cohort_for


def _cohorts() -> pd.DataFrame:
    ids = pd.Index([f"b{i}" for i in range(12)], name="brand_id", dtype=object)
    return pd.DataFrame(
        {
            "stage": np.array(["affiliate_trial", "public_traffic", "exited"], dtype=object)[np.arange(12) % 3],
            "status": np.where(np.arange(12) % 4 == 0, "already_decided", "due"),
            "tier": "small",
        },
        index=ids,
    )


@pytest.mark.parametrize("stage", ["affiliate_trial", "public_traffic", "exited", "graduated"])
def test_errors_by_position_equal_errors_looked_up(stage: str) -> None:
    # data_errors gives one error per cohorts row, in the cohorts' order: read by position;
    # in any other order (or for other brands) they are looked up by id: the same cohort
    cohorts = _cohorts()
    texts = np.array([f"row {i}: bad" if i % 5 == 0 else "" for i in range(12)], dtype=object)
    texts[7] = None
    errors = pd.Series(texts, index=cohorts.index, dtype=object)
    by_position = cohort_for(cohorts, stage, errors)
    looked_up = cohort_for(cohorts, stage, errors.iloc[::-1])
    pd.testing.assert_frame_equal(by_position, looked_up, check_exact=True)
    assert by_position["data_error"].dtype == object
    assert by_position["data_error"].tolist() == errors.reindex(by_position.index).fillna("").tolist()
    assert "data_error" not in cohorts  # the cohorts frame itself is left as it was


@pytest.mark.parametrize(
    ("stage", "ids", "window_rows"),
    [
        # windows are computed for due, not exited brands: b1 b3 b6 b7 b9 b10, rows 0-5
        ("affiliate_trial", ["b3", "b6", "b9"], [1, 2, 4]),
        ("public_traffic", ["b1", "b7", "b10"], [0, 3, 5]),
        ("exited", ["b2", "b5", "b11"], [-1, -1, -1]),
        ("graduated", [], []),
    ],
)
def test_cohort_holds_what_the_gates_read_and_each_brands_window_row(
    stage: str, ids: list[str], window_rows: list[int]
) -> None:
    cohorts = _cohorts()
    cohort = cohort_for(cohorts, stage, pd.Series("", index=cohorts.index, dtype=object))
    assert cohort.index.tolist() == ids and cohort.index.name == "brand_id"
    assert list(cohort.columns) == ["tier", "data_error", "window_row"]  # of COHORT_COLUMNS, the one cohorts has
    assert cohort["window_row"].tolist() == window_rows
    assert cohort["tier"].tolist() == ["small"] * len(ids)
