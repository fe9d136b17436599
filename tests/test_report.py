"""Tests of the operator-facing tables built from a cycle's decisions."""

from __future__ import annotations

import pandas as pd
import pytest

from brandsteps.report import changed_count, changes_rows


def _decisions(n: int) -> pd.DataFrame:
    # every third brand advances, every fifth is overdue, the rest hold
    return pd.DataFrame(
        {
            "brand_id": [f"b{i:03d}" for i in range(n)],
            "stage": "public_traffic",
            "action": ["advance" if i % 3 == 0 else "hold" for i in range(n)],
            "to_stage": ["self_broadcast" if i % 3 == 0 else "public_traffic" for i in range(n)],
            "verdict": ["PASS" if i % 3 == 0 else "FAIL" for i in range(n)],
            "overdue": [i % 5 == 0 and i % 3 != 0 for i in range(n)],
            "reason": "roi 1.1 < 1.5",
            "action_reason": "PASS 1 of 1 in a row: advance to self_broadcast",
        }
    )


@pytest.mark.parametrize(
    ("n", "limit", "rows", "total"),
    [
        # of 30 brands, 10 advance (i % 3 == 0) and 4 hold while overdue (5, 10, 20, 25): 14 changes
        (30, 1000, 14, 14),
        # the table stops at the limit; the count still says how many there are
        (30, 5, 5, 14),
        (0, 1000, 0, 0),
    ],
)
def test_changes_rows_are_capped_and_counted(n: int, limit: int, rows: int, total: int) -> None:
    decisions = _decisions(n) if n else pd.DataFrame()
    assert len(changes_rows(decisions, pd.Series({"b000": "品牌 0"}), limit=limit)) == rows
    assert changed_count(decisions) == total


def test_changes_rows_say_why_and_name_the_brand() -> None:
    rows = changes_rows(_decisions(6), pd.Series({"b000": "品牌 0"}))
    # b000 advanced: its action's reason; b005 holds but is overdue: the verdict's reason; b003 has no name configured
    assert rows[0] == {"brand": "b000 品牌 0", "from": "public_traffic", "action": "advance", "to": "self_broadcast", "verdict": "PASS", "overdue": "",
                       "why": "PASS 1 of 1 in a row: advance to self_broadcast"}
    assert rows[1]["brand"] == "b003"
    assert rows[2] == {"brand": "b005", "from": "public_traffic", "action": "hold", "to": "public_traffic", "verdict": "FAIL", "overdue": "yes", "why": "roi 1.1 < 1.5"}
