"""A cycle's chat messages: new approval waits, newly overdue, demoted and exited brands, and the daily digest.

One message per kind, however many brands it concerns (the first MAX_LISTED listed, the rest counted), in the
Chinese the operators read; brand names and reasons are shown as text, never read as markdown.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import date

import pandas as pd

from brandsteps.catalogue import EXITED, GRADUATED, STAGE_ORDER, next_stage
from brandsteps.engine.cycle import CycleSummary, funnel
from brandsteps.engine.events import newly_awaiting, newly_overdue
from brandsteps.ledger.ids import among
from brandsteps.notify.sender import Message

MAX_LISTED = 20  # brands listed in one message: 企业微信 takes 4 KB of markdown
DIGEST_LISTED = 5  # brands named per line of the digest's "needs a person"
STAGE_NAMES = {
    "affiliate_trial": "达人分销",
    "public_traffic": "公域流量",
    "self_broadcast": "品牌自播",
    "private_repurchase": "私域复购",
    "channel_exclusive": "渠道特供品",
    GRADUATED: "已毕业",
    EXITED: "已退出",
}
ACTION_NAMES = {
    "advance": "晋级",
    "graduate": "毕业",
    "await_approval": "等待审批",
    "demote": "降级",
    "recycle": "本阶段重来",
    "exit": "退出",
}
APPROVE_HINT = "没有审批链接的品牌，在终端审批：`brandsteps approve 品牌ID --by 姓名 --reason 理由`"
_MARKDOWN = re.compile(r"[*\[\]`]")
_FULL_WIDTH = {"*": "＊", "[": "［", "]": "］", "`": "｀"}


def plain(text: object) -> str:
    """A name or reason inside markdown: its *, [, ] and ` shown as full-width signs rather than read as markup."""
    return _MARKDOWN.sub(lambda m: _FULL_WIDTH[m.group(0)], str(text))


def stage_name(stage: object) -> str:
    return STAGE_NAMES.get(str(stage), str(stage))


@dataclass(frozen=True)
class CycleNews:
    """What a cycle's messages are made of.

    decisions: the decisions this run wrote (a rerun that wrote nothing announces nothing again); cohorts: the
    brands as the cycle read them (their stage before it, last_as_of); max_days: each brand's max_days_in_stage
    (NaN: none); review_links: brand -> its review-brand run's page; run_link: the cycle run's page.
    """

    summary: CycleSummary
    decisions: pd.DataFrame
    cohorts: pd.DataFrame
    names: pd.Series  # brand_id -> name
    max_days: pd.Series
    review_links: Mapping[str, str] = field(default_factory=dict)
    run_link: str | None = None

    @property
    def as_of(self) -> date:
        return self.summary.as_of

    def brand(self, brand_id: str) -> str:
        return f"**{plain(self.names.get(brand_id, brand_id))}** ({brand_id})"


def written_news(news: CycleNews, written_ids: Collection[str]) -> CycleNews:
    """news narrowed to the decisions the ledger accepted from this run."""
    decisions = news.decisions
    return replace(news, decisions=decisions[among(decisions["brand_id"], written_ids)]) if len(decisions) else news


def listed(lines: list[str], total: int, where: str) -> str:
    """The listed lines, and how many more brands there are and where to see them all."""
    more = total - len(lines)
    return "\n".join(lines) + (f"\n- ……还有 {more} 个品牌，见{where}" if more > 0 else "")


def awaiting_message(news: CycleNews) -> Message | None:
    """Brands that began waiting for a person's approval today, each with its review run (or the command)."""
    rows = news.decisions[newly_awaiting(news.decisions).to_numpy(dtype=bool)]
    if rows.empty:
        return None
    lines = []
    for brand_id, stage in rows[["brand_id", "stage"]].head(MAX_LISTED).itertuples(index=False):
        link = news.review_links.get(brand_id)
        review = f" · [去审批]({link})" if link else ""
        lines.append(f"- {news.brand(brand_id)} · {stage_name(stage)} → {stage_name(next_stage(stage))}{review}")
    text = "已连续通过本阶段，等待人工审批后晋级：\n" + listed(lines, len(rows), " Prefect 的 awaiting-approval 表")
    if any(b not in news.review_links for b in rows["brand_id"]):
        text += "\n\n" + APPROVE_HINT
    only = news.review_links.get(str(rows["brand_id"].iloc[0])) if len(rows) == 1 else None
    return Message("awaiting_approval", f"【待审批】{len(rows)} 个品牌等待审批（{news.as_of}）", text, only)


def overdue_message(news: CycleNews) -> Message | None:
    """Brands that crossed their stage's max_days_in_stage today (not those already overdue before)."""
    d = news.decisions
    rows = d[newly_overdue(d, news.cohorts["last_as_of"], news.max_days).to_numpy(dtype=bool)]
    if rows.empty:
        return None
    lines = []
    for brand_id, stage, days, verdict, reason in (
        rows[["brand_id", "stage", "days_in_stage", "verdict", "reason"]].head(MAX_LISTED).itertuples(index=False)
    ):
        limit = news.max_days.get(brand_id)
        cap = f"（上限 {int(limit)} 天）" if limit is not None and limit == limit else ""
        lines.append(
            f"- {news.brand(brand_id)} · {stage_name(stage)}第 {int(days)} 天{cap} · {verdict}：{plain(reason)}"
        )
    text = "在本阶段停留超过期限，请跟进：\n" + listed(lines, len(rows), " `brandsteps status`")
    return Message("overdue", f"【超期】{len(rows)} 个品牌超过阶段期限（{news.as_of}）", text, news.run_link)


def moved_message(news: CycleNews, action: str) -> Message | None:
    """Brands demoted (action demote) or exited (exit) today, each with where it went and why."""
    rows = news.decisions[news.decisions["action"].to_numpy() == action]
    if rows.empty:
        return None
    lines = [
        f"- {news.brand(brand_id)} · {stage_name(stage)} → {stage_name(to_stage)} · {plain(reason)}"
        for brand_id, stage, to_stage, reason in rows[["brand_id", "stage", "to_stage", "reason"]]
        .head(MAX_LISTED)
        .itertuples(index=False)
    ]
    kind, word = ("demoted", "降级") if action == "demote" else ("exited", "退出")
    return Message(
        kind,
        f"【{word}】{len(rows)} 个品牌{word}（{news.as_of}）",
        listed(lines, len(rows), " Prefect 的 decision-changes 表"),
        news.run_link,
    )


def _funnel_lines(before: Mapping[str, int], after: Mapping[str, int]) -> list[str]:
    lines = []
    for stage in STAGE_ORDER:
        change = after.get(stage, 0) - before.get(stage, 0)
        lines.append(f"- {stage_name(stage)}：{after.get(stage, 0)}" + (f"（{change:+d}）" if change else ""))
    return lines


def _named(news: CycleNews, ids: list[str]) -> str:
    shown = "、".join(news.brand(b) for b in ids[:DIGEST_LISTED])
    return shown + (f" 等 {len(ids)} 个" if len(ids) > DIGEST_LISTED else "")


def needs_a_person(news: CycleNews) -> list[str]:
    """The digest's to-do: approval waits, overdue brands, brands whose data failed validation, rejected rows."""
    s = news.summary
    waiting = (
        news.decisions.loc[news.decisions["action"].to_numpy() == "await_approval", "brand_id"].astype(str).tolist()
    )
    lines = []
    for word, ids in (("等待审批", waiting), ("超期", list(s.overdue)), ("数据校验失败（ERROR）", list(s.errors))):
        if ids:
            lines.append(f"- {word} {len(ids)}：{_named(news, ids)}")
    if s.quarantined_rows:
        lines.append(f"- 隔离的数据行 {s.quarantined_rows}：见 Prefect 的 quarantined-rows 表")
    if s.unknown_brands_rows:
        lines.append(
            f"- 不属于任何品牌的数据行 {s.unknown_brands_rows}"
            f"（{'、'.join(plain(b) for b in s.unknown_brands[:DIGEST_LISTED])}）"
        )
    return lines or ["- 无"]


def digest_message(news: CycleNews) -> Message:
    """The day's digest: the funnel and its change since the last cycle, the moves, the verdicts, who needs a person."""
    s = news.summary
    before = funnel(news.cohorts, news.decisions.iloc[:0])  # each brand's stage as the cycle found it
    moves = " · ".join(f"{ACTION_NAMES[a]} {n}" for a, n in s.actions.items() if n and a in ACTION_NAMES) or "无"
    verdicts = " · ".join(f"{v} {n}" for v, n in s.verdicts.items() if n) or "无"
    lines = [
        "**阶段漏斗**（括号内为较上一周期的变化）",
        *_funnel_lines(before, s.funnel),
        f"**变动**：{moves}",
        f"**结论**：{verdicts}",
    ]
    text = "\n".join([*lines, "**需要人工处理**", *needs_a_person(news)])
    return Message("digest", f"【日报】{s.as_of} 入驻周期：{len(news.decisions)} 个品牌已决策", text, news.run_link)


def cycle_messages(news: CycleNews, digest: bool = True) -> list[Message]:
    """The cycle's messages in the order people act on them; none when the run wrote no decision (a rerun)."""
    if news.decisions.empty:
        return []
    found = [awaiting_message(news), overdue_message(news), moved_message(news, "demote"), moved_message(news, "exit")]
    messages = [m for m in found if m is not None]
    return [*messages, digest_message(news)] if digest else messages
