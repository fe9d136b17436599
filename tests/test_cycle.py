"""The cycle's cohort of one stage: the due brands, what the gates read of them, and their data errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brandsteps.engine.cycle import cohort_for


def _cohorts() -> pd.DataFrame:
    """Twelve brands b0..b11, stages in turn affiliate_trial, public_traffic, exited; b0, b4 and b8 decided already."""
    ids = pd.Index([f"b{i}" for i in range(12)], name="brand_id", dtype=object)
    return pd.DataFrame(
        {
            "stage": np.array(["affiliate_trial", "public_traffic", "exited"], dtype=object)[np.arange(12) % 3],
            "status": np.where(np.arange(12) % 4 == 0, "already_decided", "due"),
            "tier": "small",
        },
        index=ids,
    )


@pytest.mark.parametrize(
    ("stage", "ids"),
    [
        # b0 (already decided) is left out; exited brands get a cohort of their own
        pytest.param("affiliate_trial", ["b3", "b6", "b9"], id="affiliate_trial"),
        pytest.param("public_traffic", ["b1", "b7", "b10"], id="public_traffic"),  # b4 already decided
        pytest.param("exited", ["b2", "b5", "b11"], id="exited"),  # b8 already decided
        pytest.param("graduated", [], id="nobody"),
    ],
)
def test_cohort_holds_the_due_brands_of_the_stage_and_what_the_gates_read(stage: str, ids: list[str]) -> None:
    cohorts = _cohorts()
    cohort = cohort_for(cohorts, stage, pd.Series("", index=cohorts.index, dtype=object))
    assert cohort.index.tolist() == ids and cohort.index.name == "brand_id"
    assert list(cohort.columns) == ["tier", "data_error"]  # of the gates' COHORT_COLUMNS, the one cohorts has
    assert cohort["tier"].tolist() == ["small"] * len(ids)


def test_data_errors_are_read_by_brand_and_missing_is_none() -> None:
    cohorts = _cohorts()
    # in reverse order, with a missing text: each brand still gets its own error, '' for none
    errors = pd.Series(["", "row 3: bad", None, "row 6: bad"], index=["b9", "b3", "b6", "b1"], dtype=object)
    assert cohort_for(cohorts, "affiliate_trial", errors)["data_error"].tolist() == ["row 3: bad", "", ""]
    cohort = cohort_for(cohorts, "public_traffic", errors)
    assert cohort["data_error"].tolist() == ["row 6: bad", "", ""]  # b7 and b10 are not in errors at all
    assert cohort["data_error"].dtype == object
    assert "data_error" not in cohorts  # the cohorts frame itself is left as it was
