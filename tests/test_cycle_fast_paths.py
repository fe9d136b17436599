"""Cycle helpers' fast paths give exactly what the plain computations give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brandsteps.cycle import cohort_for


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
