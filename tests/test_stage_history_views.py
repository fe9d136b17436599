"""Every kind of stage change as `explain` and `status` show it (text and JSON): when, what, cause, actor and reason."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import pytest

from brandsteps.cli import main
from brandsteps.config import load_portfolio
from brandsteps.engine.cycle import run_day
from brandsteps.ledger import Ledger
from brandsteps.sources.metrics_source import validate
from tests.conftest import quiet_variables_restored, simple_playbook, write_configs

FIRST_DAY, LAST_DAY = date(2026, 1, 1), date(2026, 1, 6)
# The simple playbook (gmv >= 300 over a 3-day window, 2 days in stage first, 2 passes in a row), plus: a refund guardrail
# that affiliate_trial keeps checking in every later stage, recycle on failing self_broadcast, exit on failing private_repurchase.
PLAYBOOK = simple_playbook(
    affiliate_trial={"guardrails": [{"metric": "refund_rate", "op": "<=", "threshold": 0.5}]},
    self_broadcast={"on_fail": "recycle"},
    private_repurchase={"on_fail": "exit"},
)
# What review-brand records when nobody answers its form (flows/review_brand.py, record_timeout, 72 hours by default).
TIMEOUT_BY, TIMEOUT_REASON = "review-brand", "no answer within 72 hours: default outcome hold"


class Brand(NamedTuple):
    config: dict[str, Any]  # the brand file's fields beyond the defaults (stage affiliate_trial, start 2026-01-01)
    days: int  # days of metrics from FIRST_DAY; later windows have no gmv: INCONCLUSIVE, no more moves
    gmv: float  # per day
    refunds: float = 0.0  # refund_amount per day (refund_rate = refunds / gmv)


AWAITS_PUBLIC_TRAFFIC = {"requires_approval": ["public_traffic"]}
BRANDS = {
    "advance": Brand({}, days=3, gmv=500),
    "approve": Brand(AWAITS_PUBLIC_TRAFFIC, days=6, gmv=500),
    "reject": Brand(AWAITS_PUBLIC_TRAFFIC, days=6, gmv=500),
    "timeout": Brand(AWAITS_PUBLIC_TRAFFIC, days=6, gmv=500),
    "demote": Brand({"stage": "public_traffic"}, days=2, gmv=500, refunds=400),
    "recycle": Brand({"stage": "self_broadcast"}, days=2, gmv=50),
    "exit": Brand({"stage": "private_repurchase"}, days=2, gmv=50),
    "graduate": Brand({"stage": "channel_exclusive"}, days=3, gmv=500),
    "approve-graduate": Brand(
        {"stage": "private_repurchase", "requires_approval": ["channel_exclusive"]}, days=6, gmv=500
    ),
    "steady": Brand({}, days=6, gmv=50),
}


class Change(NamedTuple):
    """One stage change as explain's JSON stage_history and status's last_change give it."""

    as_of: str
    from_stage: str
    to_stage: str
    action: str
    cause: str
    actor: str | None
    reason: str


class Case(NamedTuple):
    brand: str
    explain_lines: tuple[str, ...]  # explain's stage history lines, exactly
    history: tuple[Change, ...]  # explain --format json's stage_history, in order
    status_change: str  # status's "last stage change" column, exactly
    status_line: str  # the brand's whole status row, runs of spaces as one


PASS_TO_PUBLIC_TRAFFIC = Change(
    "2026-01-03",
    "affiliate_trial",
    "public_traffic",
    "advance",
    "decision",
    None,
    "PASS 2 of 2 in a row: advance to public_traffic",
)
PASS_TO_PUBLIC_TRAFFIC_LINE = "    2026-01-03 affiliate_trial -> public_traffic (advance, decision): PASS 2 of 2 in a row: advance to public_traffic"

CASES = [
    # Day 1 is INCONCLUSIVE (1 day in stage < 2); days 2 and 3 PASS (window gmv 1000, 1500 >= 300): the 2nd pass in a row
    # advances on day 3. A cycle's decision has no actor. Days 4-6 have no metrics: "no value: gmv", INCONCLUSIVE, hold.
    pytest.param(
        Case(
            "advance",
            (PASS_TO_PUBLIC_TRAFFIC_LINE,),
            (PASS_TO_PUBLIC_TRAFFIC,),
            "2026-01-03 advance, decision",
            "advance public_traffic 2026-01-06 INCONCLUSIVE hold 2026-01-03 advance, decision",
        ),
        id="advance",
    ),
    # Advanced by the cycle on day 3 as above; public_traffic needs approval: entered day 4, PASS on days 5 and 6, so
    # await_approval on day 6. `brandsteps approve` then moves it on, dated the last decided day (6) and signed by the reviewer.
    # Its last decision is still day 6's await_approval; the stage is the approved one and it no longer waits (no flag).
    pytest.param(
        Case(
            "approve",
            (
                PASS_TO_PUBLIC_TRAFFIC_LINE,
                "    2026-01-06 public_traffic -> self_broadcast (advance, approval by 王敏): numbers hold",
            ),
            (
                PASS_TO_PUBLIC_TRAFFIC,
                Change("2026-01-06", "public_traffic", "self_broadcast", "advance", "approval", "王敏", "numbers hold"),
            ),
            "2026-01-06 advance, approval by 王敏",
            "approve self_broadcast 2026-01-06 PASS await_approval 2026-01-06 advance, approval by 王敏",
        ),
        id="approve",
    ),
    # The same wait, rejected: it stays in public_traffic (hold, from = to) and no longer waits. The reviewer's reason has a
    # line break (a form's text area): JSON keeps it, explain's one line per change shows it as a space.
    pytest.param(
        Case(
            "reject",
            (
                PASS_TO_PUBLIC_TRAFFIC_LINE,
                "    2026-01-06 public_traffic -> public_traffic (hold, rejection by Li Wei): refunds look high",
            ),
            (
                PASS_TO_PUBLIC_TRAFFIC,
                Change(
                    "2026-01-06",
                    "public_traffic",
                    "public_traffic",
                    "hold",
                    "rejection",
                    "Li Wei",
                    "refunds look\nhigh",
                ),
            ),
            "2026-01-06 hold, rejection by Li Wei",
            "reject public_traffic 2026-01-06 PASS await_approval 2026-01-06 hold, rejection by Li Wei",
        ),
        id="reject",
    ),
    # The same wait, unanswered: review-brand records the default outcome, hold, with itself as the actor; the brand
    # keeps waiting, so status still flags it awaiting-approval.
    pytest.param(
        Case(
            "timeout",
            (
                PASS_TO_PUBLIC_TRAFFIC_LINE,
                f"    2026-01-06 public_traffic -> public_traffic (hold, review_timeout by review-brand): {TIMEOUT_REASON}",
            ),
            (
                PASS_TO_PUBLIC_TRAFFIC,
                Change(
                    "2026-01-06",
                    "public_traffic",
                    "public_traffic",
                    "hold",
                    "review_timeout",
                    TIMEOUT_BY,
                    TIMEOUT_REASON,
                ),
            ),
            "2026-01-06 hold, review_timeout by review-brand",
            "timeout public_traffic 2026-01-06 PASS await_approval 2026-01-06 hold, review_timeout by review-brand awaiting-approval",
        ),
        id="review-timeout",
    ),
    # Starts in public_traffic with refunds of 80% of gmv: affiliate_trial's guardrail (<= 50%) fails on day 1 and day 2,
    # its consecutive_passes (2) evaluations in a row, so the cycle demotes it on day 2 (even though day 1 was too early
    # for a verdict of its own). Back in affiliate_trial from day 3, without metrics: held.
    pytest.param(
        Case(
            "demote",
            (
                "    2026-01-02 public_traffic -> affiliate_trial (demote, decision): guardrail affiliate_trial failed 2 evaluations in a row (refund_rate 80% > 50%)",
            ),
            (
                Change(
                    "2026-01-02",
                    "public_traffic",
                    "affiliate_trial",
                    "demote",
                    "decision",
                    None,
                    "guardrail affiliate_trial failed 2 evaluations in a row (refund_rate 80% > 50%)",
                ),
            ),
            "2026-01-02 demote, decision",
            "demote affiliate_trial 2026-01-06 INCONCLUSIVE hold 2026-01-02 demote, decision",
        ),
        id="guardrail-demote",
    ),
    # self_broadcast recycles on FAIL: day 2's window gmv 100 (2 x 50) < 300 restarts the stage clock (from = to), the
    # stage entered again on day 3.
    pytest.param(
        Case(
            "recycle",
            (
                "    2026-01-02 self_broadcast -> self_broadcast (recycle, decision): on_fail recycle: restart the self_broadcast clock (gmv ¥100.00 < ¥300.00)",
            ),
            (
                Change(
                    "2026-01-02",
                    "self_broadcast",
                    "self_broadcast",
                    "recycle",
                    "decision",
                    None,
                    "on_fail recycle: restart the self_broadcast clock (gmv ¥100.00 < ¥300.00)",
                ),
            ),
            "2026-01-02 recycle, decision",
            "recycle self_broadcast 2026-01-06 INCONCLUSIVE hold 2026-01-02 recycle, decision",
        ),
        id="recycle",
    ),
    # private_repurchase exits on FAIL: the same day-2 failure leaves the programme; exited brands are then held.
    pytest.param(
        Case(
            "exit",
            (
                "    2026-01-02 private_repurchase -> exited (exit, decision): on_fail exit: leave the programme (gmv ¥100.00 < ¥300.00)",
            ),
            (
                Change(
                    "2026-01-02",
                    "private_repurchase",
                    "exited",
                    "exit",
                    "decision",
                    None,
                    "on_fail exit: leave the programme (gmv ¥100.00 < ¥300.00)",
                ),
            ),
            "2026-01-02 exit, decision",
            "exit exited 2026-01-06 INCONCLUSIVE hold 2026-01-02 exit, decision",
        ),
        id="exit",
    ),
    # The last stage's 2nd pass in a row (day 3) graduates it; graduated brands stay watched by the guardrails, whose
    # refund_rate has no value without metrics from day 4 on.
    pytest.param(
        Case(
            "graduate",
            ("    2026-01-03 channel_exclusive -> graduated (graduate, decision): PASS 2 of 2 in a row: graduate",),
            (
                Change(
                    "2026-01-03",
                    "channel_exclusive",
                    "graduated",
                    "graduate",
                    "decision",
                    None,
                    "PASS 2 of 2 in a row: graduate",
                ),
            ),
            "2026-01-03 graduate, decision",
            "graduate graduated 2026-01-06 INCONCLUSIVE hold 2026-01-03 graduate, decision",
        ),
        id="graduate",
    ),
    # Advanced into channel_exclusive by the cycle on day 3; graduating from it needs approval (awaited from day 6), and
    # the approval graduates it: action graduate, cause approval.
    pytest.param(
        Case(
            "approve-graduate",
            (
                "    2026-01-03 private_repurchase -> channel_exclusive (advance, decision): PASS 2 of 2 in a row: advance to channel_exclusive",
                "    2026-01-06 channel_exclusive -> graduated (graduate, approval by 王敏): ready for the channel",
            ),
            (
                Change(
                    "2026-01-03",
                    "private_repurchase",
                    "channel_exclusive",
                    "advance",
                    "decision",
                    None,
                    "PASS 2 of 2 in a row: advance to channel_exclusive",
                ),
                Change(
                    "2026-01-06",
                    "channel_exclusive",
                    "graduated",
                    "graduate",
                    "approval",
                    "王敏",
                    "ready for the channel",
                ),
            ),
            "2026-01-06 graduate, approval by 王敏",
            "approve-graduate graduated 2026-01-06 PASS await_approval 2026-01-06 graduate, approval by 王敏",
        ),
        id="approve-graduate",
    ),
    # Fails every day (window gmv < 300) in a stage whose on_fail is hold: decided six times, never moved. No history
    # section in explain, an empty stage_history, no last change ("-", null).
    pytest.param(
        Case("steady", (), (), "-", "steady affiliate_trial 2026-01-06 FAIL hold -"),
        id="no-change",
    ),
]


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The portfolio decided from FIRST_DAY to LAST_DAY by the cycle's core, then answered by people and by a review timeout."""
    root = tmp_path_factory.mktemp("stage-history")
    folder = write_configs(root, {brand_id: b.config for brand_id, b in BRANDS.items()}, playbook=PLAYBOOK)
    days = pd.date_range(FIRST_DAY, LAST_DAY)
    rows = pd.DataFrame(
        [
            {"brand_id": brand_id, "date": day, "gmv": b.gmv, "orders": 10.0, "refund_amount": b.refunds}
            for brand_id, b in BRANDS.items()
            for day in days[: b.days]
        ]
    )
    ledger = Ledger("sqlite:///data/ledger.sqlite", root)  # onboarding.yaml's ledger: the one the commands below open
    ledger.create()
    portfolio = load_portfolio(folder, apply_env=False)
    batch = validate(rows, as_of=LAST_DAY, today=LAST_DAY + timedelta(days=1))
    for day in days:
        run_day(portfolio, batch, ledger, day.date(), None)
    with quiet_variables_restored():
        for argv in (
            ["approve", "approve", "--by", "王敏", "--reason", "numbers hold"],
            ["approve", "approve-graduate", "--by", "王敏", "--reason", "ready for the channel"],
            ["approve", "reject", "--by", "Li Wei", "--reason", "refunds look\nhigh", "--reject"],
        ):
            assert main([*argv, "--configs", str(folder)]) == 0
    # review-brand's form timed out: its record-review-timeout task writes exactly this
    assert ledger.record_review_timeout("timeout", "public_traffic", by=TIMEOUT_BY, reason=TIMEOUT_REASON) is not None
    ledger.dispose()
    return folder


def _strict_json(text: str) -> Any:
    """JSON as any parser reads it: NaN and Infinity (Python's extensions) refused."""

    def refuse(token: str) -> None:
        raise AssertionError(f"{token} in JSON output")

    return json.loads(text, parse_constant=refuse)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("case", CASES)
def test_explain_text_shows_each_change_with_cause_actor_and_reason(
    configs: Path, capsys: pytest.CaptureFixture[str], case: Case
) -> None:
    lines = _run(capsys, "explain", case.brand, "--configs", str(configs)).splitlines()
    if not case.explain_lines:
        assert "  stage history" not in lines
        return
    start = lines.index("  stage history") + 1
    end = next(i for i, line in enumerate(lines) if line.startswith("  policy "))
    assert tuple(lines[start:end]) == case.explain_lines


@pytest.mark.parametrize("case", CASES)
def test_explain_json_stage_history_records(configs: Path, capsys: pytest.CaptureFixture[str], case: Case) -> None:
    record = _strict_json(_run(capsys, "explain", case.brand, "--configs", str(configs), "--format", "json"))
    history = record["stage_history"]
    # id, cycle_id and recorded_at differ from run to run: their shape is checked, the rest exactly
    assert [{k: v for k, v in r.items() if k not in {"id", "cycle_id", "recorded_at"}} for r in history] == [
        {"brand_id": case.brand, **c._asdict()} for c in case.history
    ]
    for r in history:
        assert isinstance(r["id"], int)
        # a cycle's decision names its cycle; a person's answer or a review timeout belongs to no cycle (null, not NaN)
        assert (r["cycle_id"] is None) == (r["cause"] != "decision")
        # all in UTC, approvals too (SQLite returns those without a zone)
        assert r["recorded_at"].endswith("+00:00")


def _status_row(out: str, brand: str) -> tuple[str, str]:
    """The brand's status row, and its "last stage change" column cut out by the header's positions."""
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("brand "))
    start, end = header.index("last stage change"), header.index("flags")
    row = next(line for line in lines if line.startswith(f"{brand} "))
    return row, row[start:end].rstrip()


@pytest.mark.parametrize("case", CASES)
def test_status_text_shows_the_last_change(configs: Path, capsys: pytest.CaptureFixture[str], case: Case) -> None:
    row, column = _status_row(_run(capsys, "status", "--configs", str(configs)), case.brand)
    assert column == case.status_change
    assert " ".join(row.split()) == case.status_line


@pytest.mark.parametrize("case", CASES)
def test_status_json_last_change(configs: Path, capsys: pytest.CaptureFixture[str], case: Case) -> None:
    status = _strict_json(_run(capsys, "status", "--configs", str(configs), "--format", "json"))
    row = next(b for b in status["brands"] if b["brand_id"] == case.brand)
    # the last of the brand's changes, or null for a brand never moved; the decision keys are there as before
    assert row["last_change"] == (case.history[-1]._asdict() if case.history else None)
    assert {"verdict", "action", "reason", "awaiting", "last_as_of"} <= set(row)
    # the day's cycle, not the approvals or the timeout recorded after it
    assert (status["last_cycle"]["as_of"], status["last_cycle"]["kind"]) == (str(LAST_DAY), "cycle")


def test_brand_report_names_the_reviewer_or_the_cause(configs: Path) -> None:
    # The same history in the markdown report (onboard-brand's artifact, review-brand's evidence): no "nan" for a decision.
    from brandsteps.reports.explain import brand_report_markdown

    ledger = Ledger("sqlite:///data/ledger.sqlite", configs.parent)
    decision = ledger.decision("approve")
    assert decision is not None
    report = brand_report_markdown(decision, "Approve", ledger.history("approve"))
    ledger.dispose()
    assert (
        "| 2026-01-03 | affiliate_trial | public_traffic | advance | decision | PASS 2 of 2 in a row: advance to public_traffic |"
        in report
    )
    assert "| 2026-01-06 | public_traffic | self_broadcast | advance | 王敏 | numbers hold |" in report
    assert "nan" not in report
