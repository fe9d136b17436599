"""The audit trail: every approval, rejection, refused answer, escalation, review timeout and stage change, as text and JSON."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from brandsteps.cli import main
from brandsteps.ledger import ApprovalProof, Attempt, CodeAlreadyUsed, Ledger, NotAwaitingApproval
from brandsteps.reports.audit import audit_entries, audit_json, audit_text, day_bounds
from tests.approval_helpers import awaiting_portfolio
from tests.ledger_checks import pg_database  # noqa: F401 - a fixture


class Rows:
    """Stands in for the ledger's two tables (audit_rows), and remembers what it was asked for."""

    def __init__(self, changes: list[dict[str, Any]], attempts: list[dict[str, Any]]):
        self.changes, self.attempts = changes, attempts
        self.asked: list[tuple[Any, ...]] = []

    def audit_rows(
        self, brand_id: str | None, since: datetime | None, until: datetime | None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        self.asked.append((brand_id, since, until))
        return self.changes, self.attempts


def _change(
    at: datetime, cause: str, action: str, from_stage: str, to_stage: str, actor: str | None, reason: str
) -> dict[str, Any]:
    return {
        "recorded_at": at,
        "brand_id": "tea",
        "as_of": date(2026, 1, 3),
        "cause": cause,
        "action": action,
        "from_stage": from_stage,
        "to_stage": to_stage,
        "actor": actor,
        "reason": reason,
    }


def _attempt(at: datetime, outcome: str, answer: str | None, actor: str, reason: str, channel: str) -> dict[str, Any]:
    return {
        "recorded_at": at,
        "brand_id": "tea",
        "stage": "public_traffic",
        "outcome": outcome,
        "answer": answer,
        "actor": actor,
        "reason": reason,
        "channel": channel,
    }


ROWS = Rows(
    changes=[
        _change(
            datetime(2026, 1, 4, 1, 0, tzinfo=UTC),
            "decision",
            "advance",
            "affiliate_trial",
            "public_traffic",
            None,
            "2 passes in a row",
        ),
        _change(
            datetime(2026, 1, 6, 3, 0, tzinfo=UTC),
            "review_timeout",
            "hold",
            "public_traffic",
            "public_traffic",
            "review-brand",
            "no answer within 72 hours: default outcome hold",
        ),
        _change(
            datetime(2026, 1, 6, 9, 30, tzinfo=UTC),
            "approval",
            "advance",
            "public_traffic",
            "self_broadcast",
            "赵磊 Zhao Lei",
            "GMV holds",
        ),
    ],
    attempts=[
        _attempt(
            datetime(2026, 1, 5, 2, 0, tzinfo=UTC),
            "escalated",
            None,
            "review-brand",
            "no answer within 24 hours: asked 赵磊 Zhao Lei again",
            "review-brand",
        ),
        _attempt(
            datetime(2026, 1, 6, 9, 29, tzinfo=UTC),
            "refused",
            "approve",
            "王敏 Wang Min",
            "a brand's owner may not approve it (four eyes)",
            "form",
        ),
    ],
)


def test_audit_text_is_one_aligned_table_in_time_order() -> None:
    entries = audit_entries(ROWS, None, None, None, "Asia/Shanghai")
    # the two tables interleave by time; times in the configured zone (UTC+8); wide characters take two columns
    assert audit_text(entries, "Asia/Shanghai").splitlines() == [
        "times in Asia/Shanghai",
        "time                 brand  event                   stage                              actor          reason",
        "2026-01-04 09:00:00  tea    stage change (advance)  affiliate_trial -> public_traffic  -              2 passes in a row",
        "2026-01-05 10:00:00  tea    escalation              public_traffic                     review-brand   no answer within 24 hours: asked 赵磊 Zhao Lei again",
        "2026-01-06 11:00:00  tea    review timeout          public_traffic                     review-brand   no answer within 72 hours: default outcome hold",
        "2026-01-06 17:29:00  tea    refused                 public_traffic                     王敏 Wang Min  a brand's owner may not approve it (four eyes)",
        "2026-01-06 17:30:00  tea    approval                public_traffic -> self_broadcast   赵磊 Zhao Lei  GMV holds",
    ]


def test_audit_json_is_a_list_of_objects_with_iso_times() -> None:
    records = json.loads(audit_json(audit_entries(ROWS, None, None, None, "Asia/Shanghai")))
    # every record has the same keys; times keep their offset; a cycle's change has no actor, an attempt no decision day
    assert records[0] == {
        "time": "2026-01-04T09:00:00+08:00",
        "brand_id": "tea",
        "event": "stage change",
        "action": "advance",
        "from_stage": "affiliate_trial",
        "to_stage": "public_traffic",
        "as_of": "2026-01-03",
        "actor": None,
        "reason": "2 passes in a row",
        "channel": None,
    }
    assert records[3] == {
        "time": "2026-01-06T17:29:00+08:00",
        "brand_id": "tea",
        "event": "refused",
        "action": "approve",
        "from_stage": "public_traffic",
        "to_stage": "public_traffic",
        "as_of": None,
        "actor": "王敏 Wang Min",
        "reason": "a brand's owner may not approve it (four eyes)",
        "channel": "form",
    }
    assert [r["event"] for r in records] == ["stage change", "escalation", "review timeout", "refused", "approval"]


def test_nothing_recorded_says_so() -> None:
    rows = Rows([], [])
    assert audit_text(audit_entries(rows, "tea", None, None, "UTC"), "UTC") == "nothing recorded"
    assert rows.asked == [("tea", None, None)]  # the brand goes to the ledger's query; no days, no bounds


@pytest.mark.parametrize(
    ("first", "last", "zone", "bounds"),
    [
        pytest.param(
            date(2026, 1, 5),
            date(2026, 1, 5),
            "Asia/Shanghai",
            (datetime(2026, 1, 4, 16, tzinfo=UTC), datetime(2026, 1, 5, 16, tzinfo=UTC)),
            id="one-day-in-shanghai",
        ),  # UTC+8
        pytest.param(date(2026, 1, 5), None, "UTC", (datetime(2026, 1, 5, tzinfo=UTC), None), id="from-only"),
        pytest.param(
            None,
            date(2026, 3, 29),
            "Europe/Berlin",
            (None, datetime(2026, 3, 29, 22, tzinfo=UTC)),
            id="to-the-end-of-a-dst-day",
        ),
    ],
)
def test_day_bounds_are_the_zones_midnights_in_utc(
    first: date | None, last: date | None, zone: str, bounds: tuple
) -> None:
    # --to is inclusive: the bound is the next day's midnight (Berlin is UTC+2 after the switch on 29 March)
    assert day_bounds(first, last, zone) == bounds


def _record(ledger: Ledger, at: datetime, actor: str, reason: str, brand: str = "tea") -> None:
    ledger.record_attempt(
        Attempt(
            brand,
            "affiliate_trial",
            "refused",
            actor,
            reason,
            "cli",
            answer="approve",
            refusal="wrong_code",
            recorded_at=at,
        )
    )


def test_audit_command_reads_the_ledger_by_day_and_brand(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    configs = awaiting_portfolio(tmp_path)
    ledger = Ledger("sqlite:///data/ledger.sqlite", tmp_path)
    _record(ledger, datetime(2026, 1, 4, 15, 59, 59, tzinfo=UTC), "赵磊 Zhao Lei", "on 4 January in Shanghai")
    _record(ledger, datetime(2026, 1, 4, 16, 0, 0, tzinfo=UTC), "赵磊 Zhao Lei", "on 5 January in Shanghai")
    _record(ledger, datetime(2026, 1, 5, 1, 0, 0, tzinfo=UTC), "Li Wei", "another brand", brand="silk")
    ledger.dispose()
    assert (
        main(
            [
                "audit",
                "tea",
                "--from",
                "2026-01-05",
                "--to",
                "2026-01-05",
                "--format",
                "json",
                "--configs",
                str(configs),
            ]
        )
        == 0
    )
    # 16:00 UTC is midnight of the 5th in Asia/Shanghai (the default timezone); silk's attempt is another brand's
    assert json.loads(capsys.readouterr().out) == [
        {
            "time": "2026-01-05T00:00:00+08:00",
            "brand_id": "tea",
            "event": "refused",
            "action": "approve",
            "from_stage": "affiliate_trial",
            "to_stage": "affiliate_trial",
            "as_of": None,
            "actor": "赵磊 Zhao Lei",
            "reason": "on 5 January in Shanghai",
            "channel": "cli",
        },
    ]
    assert main(["audit", "--to", "2026-01-05", "--configs", str(configs)]) == 0
    assert capsys.readouterr().out.splitlines()[2:] == [
        "2026-01-04 23:59:59  tea    refused  affiliate_trial  赵磊 Zhao Lei  on 4 January in Shanghai",
        "2026-01-05 00:00:00  tea    refused  affiliate_trial  赵磊 Zhao Lei  on 5 January in Shanghai",
        "2026-01-05 09:00:00  silk   refused  affiliate_trial  Li Wei         another brand",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["../x"], "brandsteps: '../x' is not a brand id (lowercase letters, digits and -)", id="not-a-brand-id"
        ),
        pytest.param(
            ["--from", "2026-01-05", "--to", "2026-01-04"],
            "brandsteps: --to 2026-01-04 is before --from 2026-01-05",
            id="backwards",
        ),
    ],
)
def test_audit_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    configs = awaiting_portfolio(tmp_path)
    assert main(["audit", *args, "--configs", str(configs)]) == 2
    assert capsys.readouterr().err.splitlines() == [message]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    return str(request.getfixturevalue("pg_database"))


def test_attempts_and_approvals_on_sqlite_and_postgresql(tmp_path: Path, ledger_url: str) -> None:
    awaiting_portfolio(tmp_path, ledger_url=ledger_url)
    ledger = Ledger(ledger_url)
    ledger.create()
    _record(ledger, datetime(2026, 1, 5, 1, 0, tzinfo=UTC), "Li Wei", "wrong or expired code")
    ledger.resolve_approval(
        "tea",
        by="赵磊 Zhao Lei",
        reason="GMV holds",
        approve=True,
        proof=ApprovalProof("cli", 59_000_000, "affiliate_trial"),
    )
    # a spent code is refused by the ledger itself, in the approving transaction: two answers racing with one code approve once
    with pytest.raises(CodeAlreadyUsed, match="this code was already used by 赵磊 Zhao Lei: wait for the next one"):
        ledger.resolve_approval(
            "silk",
            by="赵磊 Zhao Lei",
            reason="GMV holds",
            approve=True,
            proof=ApprovalProof("cli", 59_000_000, "affiliate_trial"),
        )
    assert ledger.last_code_step("赵磊 Zhao Lei") == 59_000_000 and ledger.read_state(["silk"]).iloc[0]["awaiting"]
    # an answer checked for a stage the brand has left approves nothing
    with pytest.raises(NotAwaitingApproval):
        ledger.resolve_approval(
            "silk", by="孙丽 Sun Li", reason="GMV holds", approve=True, proof=ApprovalProof("cli", 1, "public_traffic")
        )
    entries = audit_entries(ledger, None, date(2026, 1, 5), None, "Asia/Shanghai")
    # the refused attempt (5 January) and today's approval; the accepted attempt is the approval's own record, not a second line
    assert [(e.brand_id, e.event, e.actor, e.reason) for e in entries] == [
        ("tea", "refused", "Li Wei", "wrong or expired code"),
        ("tea", "approval", "赵磊 Zhao Lei", "GMV holds"),
    ]
    assert entries[0].time.isoformat() == "2026-01-05T09:00:00+08:00"
    ledger.dispose()
