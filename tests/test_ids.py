"""Tests of brand id membership."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brandsteps.ledger.ids import among


@pytest.mark.parametrize(
    ("values", "ids", "expected"),
    [
        (["a", "b", "c"], {"b", "c", "z"}, [False, True, True]),
        (["a", "b"], set(), [False, False]),  # nothing written: nobody is among them
        ([], {"a"}, []),
        # pandas' Arrow strings and a categorical column (the metrics' brand_id) give the same answer
        (pd.Series(["a", "b"], dtype="str"), frozenset({"a"}), [True, False]),
        (pd.Series(["a", "b", "a"], dtype="category"), ["a"], [True, False, True]),
    ],
)
def test_among(values: object, ids: object, expected: list[bool]) -> None:
    out = among(values, ids)  # type: ignore[arg-type]
    assert out.dtype == np.bool_ and out.tolist() == expected
