"""Task: the cycle's alerts in the team's chat robots and a `notifications` artifact; never fails the cycle."""

from __future__ import annotations

from dataclasses import replace
from typing import cast

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.blocks.system import Secret
from prefect.cache_policies import NONE
from prefect.runtime import flow_run
from prefect.settings import PREFECT_UI_URL

from brandsteps.config import Portfolio
from brandsteps.engine.cycle import CycleSummary
from brandsteps.engine.events import max_days_by_brand, newly_awaiting
from brandsteps.ledger import WriteResult
from brandsteps.notify import Delivery, Message, SecretRef, send_batch
from brandsteps.notify.messages import MAX_LISTED, CycleNews, cycle_messages, written_news
from brandsteps.notify.sender import ChannelError, resolve_from_env
from tasks.artifacts import review_links


class PrefectSecrets:
    """Channel URLs and secrets from environment variables or Prefect Secret blocks, each read once per cycle."""

    def __init__(self) -> None:
        self._values: dict[SecretRef, str] = {}

    def __call__(self, ref: SecretRef) -> str:
        if ref not in self._values:
            self._values[ref] = resolve_from_env(ref) if ref.source == "env" else self._block(ref)
        return self._values[ref]

    @staticmethod
    def _block(ref: SecretRef) -> str:
        try:
            block = cast("Secret[str]", Secret.load(ref.name))  # a sync task: async_dispatch runs the sync load
        except ValueError:  # Prefect's words for a block that does not exist
            raise ChannelError(f"{ref.describe()} does not exist") from None
        value = block.get()
        if not isinstance(value, str) or not value.strip():
            raise ChannelError(f"{ref.describe()} holds no text")
        return value.strip()


def _run_link() -> str | None:
    ui, run_id = PREFECT_UI_URL.value(), flow_run.get_id()
    return f"{ui.rstrip('/')}/runs/flow-run/{run_id}" if ui and run_id else None


def _with_review_links(news: CycleNews) -> CycleNews:
    """The review runs start-reviews started for the brands that began waiting today (those the message lists)."""
    waiting = news.decisions[newly_awaiting(news.decisions).to_numpy(dtype=bool)].head(MAX_LISTED)
    return replace(news, review_links=review_links(waiting)) if len(waiting) else news


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def publish_deliveries(sent: list[tuple[Message, Delivery]], key_prefix: str) -> None:
    rows = [
        f"| {_cell(d.channel)} | {m.kind} | {'ok' if d.ok else 'failed'} | {d.attempts} | {_cell(d.error)} |"
        for m, d in sent
    ]
    failed = sum(1 for _, d in sent if not d.ok)
    create_markdown_artifact(
        key=f"{key_prefix}notifications",
        markdown="\n".join(["| channel | kind | result | attempts | error |", "|---|---|---|---|---|", *rows]),
        description=f"Chat alerts of this cycle: {len(sent) - failed} sent, {failed} failed "
        "(channels: notify in onboarding.yaml)",
    )


@task(name="notify", cache_policy=NONE)
def notify_cycle(
    portfolio: Portfolio,
    summary: CycleSummary,
    decisions: pd.DataFrame,
    cohorts: pd.DataFrame,
    names: pd.Series,
    written: WriteResult,
    key_prefix: str = "",
) -> list[Delivery]:
    """One message per kind of news to each channel subscribed to it, and the day's digest (not from a shard: its
    funnel is only part of the portfolio's). Never raises: a channel that fails after its retries is a warning."""
    channels = portfolio.onboarding.notify
    if not channels or decisions.empty or not written.written_ids:
        return []
    logger = get_run_logger()
    try:
        news = CycleNews(
            summary, decisions, cohorts, names, max_days_by_brand(portfolio, cohorts["stage"]), run_link=_run_link()
        )
        messages = cycle_messages(_with_review_links(written_news(news, written.written_ids)), digest=not key_prefix)
    except Exception:  # the decisions are recorded: a report's bug must not fail the cycle, but must show
        logger.exception("The cycle's chat messages could not be built; none was sent")
        return []
    sent = send_batch(channels, messages, resolve_secret=PrefectSecrets())
    for message, delivery in sent:
        if not delivery.ok:
            logger.warning(
                "Chat alert %s to %s failed (%d attempts): %s",
                message.kind,
                delivery.channel,
                delivery.attempts,
                delivery.error,
            )
    publish_deliveries(sent, key_prefix)
    logger.info("Sent %d of %d chat alerts", sum(1 for _, d in sent if d.ok), len(sent))
    return [d for _, d in sent]
