"""Tests of brand id membership."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brandsteps.ledger.ids import among


@pytest.mark.parametrize(
    ("values", "ids", "expected"),
    [
        # b and c are among the ids; z is not a value, and a is not an id
        pytest.param(["a", "b", "c"], {"b", "c", "z"}, [False, True, True], id="list"),
        pytest.param(["a", "b"], set(), [False, False], id="no-ids"),  # nothing written: nobody is among them
        pytest.param([], {"a"}, [], id="no-values"),
        # pandas' Arrow strings and a categorical column (the metrics' brand_id) give the same answer
        pytest.param(pd.Series(["a", "b"], dtype="str"), frozenset({"a"}), [True, False], id="arrow-strings"),
        pytest.param(pd.Series(["a", "b", "a"], dtype="category"), ["a"], [True, False, True], id="categorical"),
    ],
)
def test_among(values: object, ids: object, expected: list[bool]) -> None:
    out = among(values, ids)  # type: ignore[arg-type]
    assert out.dtype == np.bool_ and out.tolist() == expected
