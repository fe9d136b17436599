"""`brandsteps approve` and `brandsteps approvers enroll`: an answer proved by its approver's code, and new codes."""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from brandsteps.cli import prefect_server
from brandsteps.cli.common import EXIT_OK, UsageError, ledger_of


def cmd_approve(args: argparse.Namespace) -> int:
    from brandsteps.config import load_brand_only

    portfolio = load_brand_only(args.configs, args.brand)  # one brand file, not the whole portfolio
    if args.brand not in portfolio.brands:
        raise UsageError(f"unknown brand {args.brand!r}: no {args.configs}/brands/{args.brand}.yaml")
    from brandsteps.approvals.approvers import load_approvers

    answer = _approval_answer(args)
    approvers = load_approvers(args.configs)
    if approvers is None and answer.code:
        print(
            f"warning: no {args.configs}/approvers.yaml: --code is not checked (any name may approve)", file=sys.stderr
        )
    ledger = ledger_of(args, portfolio)
    by, step, stage = _proved_approver(args, portfolio.brands[args.brand], approvers, ledger, answer)
    from brandsteps.ledger import ApprovalProof, CodeAlreadyUsed, LedgerError

    try:
        change = ledger.resolve_approval(
            args.brand, by=by, reason=answer.reason, approve=not args.reject, proof=ApprovalProof("cli", step, stage)
        )
    except CodeAlreadyUsed as exc:  # the same code accepted a moment ago for another answer
        _refuse(ledger, args, answer, stage, "replayed", str(exc))
    except LedgerError as exc:
        raise UsageError(str(exc)) from None
    verb = "rejected" if args.reject else "approved"
    print(f"{args.brand}: {verb} by {by}: {change['from_stage']} -> {change['to_stage']}")
    if not prefect_server.local_server_mode():  # a temporary server runs no review forms: only a real one has them open
        _close_review_forms(args.brand, answer)
    return EXIT_OK


def _approval_answer(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError

    from brandsteps.approvals.review import REASON_MAX, REVIEWER_MAX, ReviewAnswer

    try:
        return ReviewAnswer(
            decision="reject" if args.reject else "approve", reviewer=args.by, reason=args.reason, code=args.code
        )
    except ValidationError as exc:
        if any(err["loc"] == ("code",) for err in exc.errors()):
            raise UsageError("--code must be the 6 digits your authenticator app shows now") from None
        raise UsageError(
            f"--by (2–{REVIEWER_MAX} characters) and --reason (3–{REASON_MAX} characters) are required"
        ) from None


def _proved_approver(
    args: argparse.Namespace, brand: Any, approvers: Any, ledger: Any, answer: Any
) -> tuple[str, int | None, str]:
    """The approver's name as listed, their code's time step and the stage answered.

    A refused answer is recorded, and the command ends with exit 2.
    """
    from datetime import UTC, datetime

    from brandsteps.approvals.approvers import Refusal, check_approval
    from flows.totp_secrets import totp_secret

    state = ledger.read_state([brand.brand_id])
    if not len(state) or not bool(state.iloc[0]["awaiting"]):
        raise UsageError(f"{brand.brand_id} is not awaiting approval")
    stage = str(state.iloc[0]["stage"])
    use_blocks = (
        not prefect_server.local_server_mode()
    )  # Secret blocks live on the Prefect server PREFECT_API_URL names

    def secret_of(env_name: str) -> str | None:
        return totp_secret(env_name, use_blocks)

    verdict = check_approval(
        approvers, brand, stage, answer.reviewer, answer.code, datetime.now(UTC), secret_of, ledger.last_code_step
    )
    if isinstance(verdict, Refusal):
        _refuse(ledger, args, answer, stage, verdict.kind, verdict.reason)
    return verdict.approver, verdict.step, stage


def _refuse(ledger: Any, args: argparse.Namespace, answer: Any, stage: str, kind: str, reason: str) -> NoReturn:
    """Record the refused answer (who, when, why) and end with exit 2; the brand is left as it was."""
    from brandsteps.ledger import Attempt

    ledger.record_attempt(
        Attempt(args.brand, stage, "refused", answer.reviewer, reason, "cli", answer=answer.decision, refusal=kind)
    )
    raise UsageError(f"refused: {reason}; {args.brand} is unchanged")


def read_approvers(configs: str, brand_ids: list[str] | None) -> tuple[Any, list[str]]:
    """configs/approvers.yaml (None if absent) and its problems, for a report of every problem at once."""
    from brandsteps.approvals.approvers import load_approvers
    from brandsteps.config import ConfigError

    try:
        return load_approvers(configs, brand_ids), []
    except ConfigError as exc:
        return None, exc.problems


def report_approvers(configs: str, approvers: Any) -> None:
    if approvers is None:
        print(
            f"warning: no {configs}/approvers.yaml: any name may approve a brand awaiting approval "
            "(list approvers to require their codes)",
            file=sys.stderr,
        )
        return
    escalation = (
        f"; escalation after {approvers.escalate_after_hours:g} hours" if approvers.escalate_after_hours else ""
    )
    print(f"approvers: {len(approvers.approvers)} in {configs}/approvers.yaml{escalation}")


def cmd_approvers_enroll(args: argparse.Namespace) -> int:
    """A new TOTP secret for an approver, as an otpauth:// URI and its QR code for an authenticator app."""
    import segno

    from brandsteps.approvals.approvers import (
        APPROVERS_FILE,
        enrolment_uri,
        load_approvers,
        new_secret,
        secret_block_name,
        suggested_env_name,
    )

    approvers = load_approvers(args.configs)
    listed = approvers.find(args.name) if approvers else None
    name = listed.name if listed else args.name
    env = listed.totp_secret_env if listed else suggested_env_name(name)
    secret = new_secret()
    uri = enrolment_uri(secret, name)
    print(f"A new TOTP secret for {name}. Scan the QR code with an authenticator app (or give it the URI below):")
    segno.make(uri, error="m").terminal(out=sys.stdout, compact=True, border=2)
    print(uri)
    print(
        "Keep the secret where brandsteps reads it, "
        "on the machines that run `brandsteps approve` and `brandsteps serve`:"
    )
    print(f"  export {env}='{secret}'")
    print(f"  or a Prefect Secret block named {secret_block_name(env)} (`--save-block` saves it there)")
    if args.save_block:
        _save_secret_block(secret_block_name(env), secret)
    if listed is None:
        print(
            f"{name} is not in {args.configs}/{APPROVERS_FILE}: "
            f"add them with `- {{name: {name}, totp_secret_env: {env}}}` and their stages and brands"
        )
    return EXIT_OK


def _save_secret_block(block: str, secret: str) -> None:
    if prefect_server.local_server_mode():
        raise UsageError("--save-block needs the Prefect server that runs the reviews: set PREFECT_API_URL")
    from prefect.blocks.system import Secret
    from pydantic import SecretStr

    Secret(value=SecretStr(secret)).save(block, overwrite=True)
    print(f"saved as the Prefect Secret block {block}")


def _close_review_forms(brand_id: str, answer: Any) -> None:
    """The brand's paused review runs get this answer and complete; the decision above stands either way."""
    from flows.review_brand import answer_paused_reviews

    try:
        closed = answer_paused_reviews(brand_id, answer)
    except Exception as exc:  # the ledger has the decision; a server that is down must not turn it into a failure
        from brandsteps.server.api_auth import api_refusal, redact_auth

        why = api_refusal(exc) or redact_auth(f"{type(exc).__name__}: {exc}")
        print(f"warning: could not close {brand_id}'s review runs on the Prefect server ({why})", file=sys.stderr)
        return
    for name in closed:
        print(f"  review run {name}: answered, it completes saying who decided")
