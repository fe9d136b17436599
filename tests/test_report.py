"""Tests of the operator-facing tables built from a cycle's decisions."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from brandsteps.engine.cycle import CycleSummary, from_ledger
from brandsteps.reports.summary import summary_lines, summary_markdown
from brandsteps.reports.tables import (
    Table,
    awaiting_table,
    changed_count,
    changes_rows,
    changes_table,
    overdue_table,
    without_constant_columns,
)


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
            "reason": [
                "all must criteria pass; score 1 >= pass_score 1" if i % 3 == 0 else "paid_roi 1.1 < 1.5"
                for i in range(n)
            ],
            "action_reason": [
                "PASS 1 of 1 in a row: advance to self_broadcast" if i % 3 == 0 else "on_fail hold (paid_roi 1.1 < 1.5)"
                for i in range(n)
            ],
        }
    )


@pytest.mark.parametrize(
    ("n", "limit", "rows", "total"),
    [
        # of 30 brands, 10 advance (i % 3 == 0) and 4 hold while overdue (5, 10, 20, 25): 14 changes
        pytest.param(30, 1000, 14, 14, id="all-shown"),
        # the table stops at the limit; the count still says how many there are
        pytest.param(30, 5, 5, 14, id="capped"),
        pytest.param(0, 1000, 0, 0, id="no-decisions"),  # an empty day: no rows, nothing counted
    ],
)
def test_changes_rows_are_capped_and_counted(n: int, limit: int, rows: int, total: int) -> None:
    decisions = _decisions(n) if n else pd.DataFrame()
    assert len(changes_rows(decisions, pd.Series({"b000": "品牌 0"}), limit=limit)) == rows
    assert changed_count(decisions) == total


def test_changes_rows_say_why_and_name_the_brand() -> None:
    rows = changes_rows(_decisions(6), pd.Series({"b000": "品牌 0"}))
    # why is the reason of the action taken, right after the brand: b000 advanced, b005 holds (on_fail) while overdue;
    # b003 has no name configured
    assert list(rows[0]) == ["brand", "why", "from", "action", "to", "verdict", "overdue"]
    assert rows[0] == {
        "brand": "b000 品牌 0",
        "why": "PASS 1 of 1 in a row: advance to self_broadcast",
        "from": "public_traffic",
        "action": "advance",
        "to": "self_broadcast",
        "verdict": "PASS",
        "overdue": "",
    }
    assert rows[1]["brand"] == "b003"
    assert rows[2] == {
        "brand": "b005",
        "why": "on_fail hold (paid_roi 1.1 < 1.5)",
        "from": "public_traffic",
        "action": "hold",
        "to": "public_traffic",
        "verdict": "FAIL",
        "overdue": "yes",
    }


def _day(rows: list[dict]) -> pd.DataFrame:
    """Decisions of 2026-03-10 as a cycle gives them: each row's fields over these defaults."""
    base = {
        "as_of": pd.Timestamp("2026-03-10"),
        "stage": "affiliate_trial",
        "to_stage": "affiliate_trial",
        "verdict": "PASS",
        "action": "hold",
        "overdue": False,
        "days_in_stage": 5,
        "reason": "all must criteria pass; score 1 >= pass_score 1",
        "awaiting_since": None,
    }
    return pd.DataFrame([{**base, **r} for r in rows])


BRANDS = pd.DataFrame(
    {
        "name": ["山野茶社", "Laggard", "Waiter", "Paused"],
        "owner": ["王敏", None, "Li Wei", "王敏"],
        "awaiting_since": [None, None, "2026-02-28", None],  # the ledger's state: waiter has waited since February
        "max_days": [10.0, 10.0, 30.0, 10.0],
    },
    index=pd.Index(["tea", "lag", "wait", "pause"], name="brand_id"),
)


@pytest.mark.parametrize(
    ("rows", "expected", "same"),
    [
        pytest.param(
            [
                {
                    "brand_id": "tea",
                    "action": "advance",
                    "to_stage": "public_traffic",
                    "action_reason": "PASS 2 of 2 in a row: advance to public_traffic",
                },
                {"brand_id": "pause", "overdue": True, "days_in_stage": 12, "action_reason": "brand is paused"},
            ],
            # a paused brand's why is that it is paused, not its verdict's reason; no column is the same in both rows
            [
                {
                    "brand": "tea 山野茶社",
                    "why": "PASS 2 of 2 in a row: advance to public_traffic",
                    "action": "advance",
                    "to": "public_traffic",
                    "overdue": "",
                },
                {
                    "brand": "pause Paused",
                    "why": "brand is paused",
                    "action": "hold",
                    "to": "affiliate_trial",
                    "overdue": "yes",
                },
            ],
            # from and verdict say the same for both rows: left out, and named in the description
            {"from": "affiliate_trial", "verdict": "PASS"},
            id="paused-and-advanced",
        ),
        pytest.param(
            [
                {
                    "brand_id": "wait",
                    "action": "await_approval",
                    "verdict": "FAIL",
                    "reason": "gmv ¥100.00 < ¥300.00",
                    "action_reason": "awaiting approval to advance to public_traffic since 2026-02-28",
                }
            ],
            # one row: every column is "the same for every row", but only the empty overdue column says nothing
            [
                {
                    "brand": "wait Waiter",
                    "why": "awaiting approval to advance to public_traffic since 2026-02-28",
                    "from": "affiliate_trial",
                    "action": "await_approval",
                    "to": "affiliate_trial",
                    "verdict": "FAIL",
                }
            ],
            {},
            id="one-row-keeps-its-columns",
        ),
    ],
)
def test_decision_changes_drop_columns_every_row_agrees_on(rows: list[dict], expected: list[dict], same: dict) -> None:
    table = changes_table(_day(rows), BRANDS["name"])
    assert (table.rows, table.same) == (expected, same)


def test_overdue_brands_show_days_against_the_limit_and_the_owner() -> None:
    decisions = _day(
        [
            {
                "brand_id": "lag",
                "overdue": True,
                "days_in_stage": 12,
                "verdict": "FAIL",
                "action_reason": "on_fail hold (gmv ¥100.00 < ¥300.00)",
            },
            {"brand_id": "pause", "overdue": True, "days_in_stage": 11, "action_reason": "brand is paused"},
            {"brand_id": "tea"},  # not overdue: not in the table
        ]
    )
    table = overdue_table(decisions, BRANDS)
    # days in stage / max_days_in_stage; no owner configured shows –; stage and action are the same for both: left out
    assert table == Table(
        [
            {
                "brand": "lag Laggard",
                "days": "12 / 10",
                "owner": "–",
                "why": "on_fail hold (gmv ¥100.00 < ¥300.00)",
                "verdict": "FAIL",
            },
            {"brand": "pause Paused", "days": "11 / 10", "owner": "王敏", "why": "brand is paused", "verdict": "PASS"},
        ],
        {"stage": "affiliate_trial", "action": "hold"},
    )
    assert table.note() == "; every row: stage affiliate_trial, action hold"


def test_awaiting_approval_shows_owner_days_waiting_and_the_review_run() -> None:
    decisions = _day(
        [
            # read back from the ledger (a rerun): no awaiting_since of its own, the brand state's counts
            {
                "brand_id": "wait",
                "action": "await_approval",
                "verdict": "FAIL",
                "action_reason": "awaiting approval to advance to public_traffic since 2026-02-28",
            },
            # began waiting today: the decision's own awaiting_since (the state still has none)
            {
                "brand_id": "tea",
                "action": "await_approval",
                "awaiting_since": "2026-03-10",
                "action_reason": "PASS 2 of 2 in a row; advancing to public_traffic needs approval, awaiting it since 2026-03-10",
            },
        ]
    )
    links = {"wait": "http://127.0.0.1:4200/runs/flow-run/0b3c"}
    table = awaiting_table(decisions, BRANDS, links)
    # tea's review run is not started yet: the table says how to answer from a terminal; stage is the same for both
    assert table == Table(
        [
            {
                "brand": "wait Waiter",
                "owner": "Li Wei",
                "days waiting": 10,
                "since": "2026-02-28",
                "review": "http://127.0.0.1:4200/runs/flow-run/0b3c",
                "verdict": "FAIL",
            },
            {
                "brand": "tea 山野茶社",
                "owner": "王敏",
                "days waiting": 0,
                "since": "2026-03-10",
                "review": "no review run yet: brandsteps approve tea",
                "verdict": "PASS",
            },
        ],
        {"stage": "affiliate_trial"},
    )


def test_without_constant_columns_keeps_the_columns_a_table_is_for() -> None:
    rows = pd.DataFrame({"brand": ["a", "b"], "owner": ["–", "–"], "verdict": ["PASS", "PASS"]})
    # owner is what the table is for: kept even when it says the same for every row
    assert without_constant_columns(rows, keep=("brand", "owner")) == Table(
        [{"brand": "a", "owner": "–"}, {"brand": "b", "owner": "–"}], {"verdict": "PASS"}
    )


DAY = date(2026, 1, 5)


@pytest.mark.parametrize(
    ("summary", "lines"),
    [
        pytest.param(
            CycleSummary(
                DAY,
                decided=6,
                verdicts={"PASS": 2, "FAIL": 1, "INCONCLUSIVE": 1, "ERROR": 2},
                actions={
                    "advance": 1,
                    "graduate": 0,
                    "await_approval": 1,
                    "demote": 0,
                    "recycle": 0,
                    "exit": 0,
                    "hold": 4,
                },
                errors=["e1", "e2"],
                overdue=["lag"],
                quarantined_rows=4,
                quarantine_first=["metrics.csv row 3 (e1, 2026-01-02): gmv: negative"],
                unknown_brands_rows=5,
                unknown_brands=["zz"],
            ),
            [
                "Decided 6 brands: PASS 2, FAIL 1, INCONCLUSIVE 1, ERROR 2.",
                "Moves: advance 1, await_approval 1 (4 brands hold).",
                # the first reasons, and that there are more, and where they all are
                "Quarantined 4 metric rows: metrics.csv row 3 (e1, 2026-01-02): gmv: negative; … (all of them: the quarantined-rows artifact).",
                "ERROR (data failed validation): e1, e2.",
                "5 metric rows of brands no config knows, left out: zz.",
                "Overdue (past max_days_in_stage): lag.",
            ],
            id="a-day-with-everything",
        ),
        pytest.param(
            CycleSummary(DAY, decided=1, verdicts={"PASS": 1, "FAIL": 0}, actions={"advance": 1, "hold": 0}),
            # counts of none are left out
            ["Decided 1 brand: PASS 1.", "Moves: advance 1."],
            id="one-brand",
        ),
        pytest.param(CycleSummary(DAY), ["Decided 0 brands."], id="nothing-due"),
    ],
)
def test_summary_lines(summary: CycleSummary, lines: list[str]) -> None:
    assert summary_lines(summary) == lines


def test_a_rerun_summary_is_the_day_the_ledger_holds() -> None:
    # the first run decided 3 brands; the rerun wrote nothing and found all 3 decided already
    ledger_day = pd.DataFrame(
        {
            "brand_id": ["a", "b", "c"],
            "verdict": ["PASS", "PASS", "ERROR"],
            "action": ["advance", "hold", "hold"],
            "overdue": [False, True, False],
        }
    )
    rerun = from_ledger(
        CycleSummary(DAY, decided=0, already_decided=3, funnel={"affiliate_trial": 2, "public_traffic": 1}), ledger_day
    )
    assert summary_lines(rerun) == [
        "Decided 3 brands: PASS 2, ERROR 1.",
        "Moves: advance 1 (2 brands hold).",
        "3 of them were decided by an earlier run of this day: this run changed nothing for them.",
        "ERROR (data failed validation): c.",
        "Overdue (past max_days_in_stage): b.",
    ]
    assert (rerun.decided, rerun.recorded) == (0, 3)  # what this run wrote stays what it wrote
    # the artifact's markdown is these same lines
    assert summary_markdown(rerun).startswith(
        f"# Onboarding cycle {DAY}\n\n- Decided 3 brands: PASS 2, ERROR 1.\n- Moves: advance 1 (2 brands hold).\n"
    )
    assert "| 2 Public traffic | 1 | 33% |" in summary_markdown(rerun)
