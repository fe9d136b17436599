"""Chat alerts: notify settings, each robot's JSON and signature on a local receiver, retries, messages, the flow."""

from __future__ import annotations

import asyncio
import logging
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from brandsteps.config import ConfigError, Onboarding, apply_environment, load_portfolio
from brandsteps.engine.cycle import CycleSummary, funnel
from brandsteps.notify import Delivery, Message, NotifyChannel, Retry, send_all, send_batch
from brandsteps.notify.messages import CycleNews, cycle_messages, plain, written_news
from brandsteps.notify.sender import CUT_NOTE, fit, scrub
from tests.chat_robots import WECOM_MAX_BYTES, chat_robots
from tests.conftest import simple_playbook, write_configs

AS_OF = date(2026, 1, 5)
WECOM_KEY = "wk-3f9a1c77e2"
DING_TOKEN = "dt4be81c0d55aa"
DING_SECRET = "SEC0a1b2c3d4e5f60718293a4b5c6d7e8f9"
FEISHU_TOKEN = "fs-6d2e9b1c-77aa"
FEISHU_SECRET = "Fs3cr3tVa1ueQ9x"
SECRETS = (WECOM_KEY, DING_TOKEN, DING_SECRET, FEISHU_TOKEN, FEISHU_SECRET)
FAST = {"retry_delay_s": 0.0, "timeout_s": 5.0}


def channel(kind: str, url_env: str, secret_env: str | None = None, **extra: Any) -> NotifyChannel:
    return NotifyChannel.model_validate({"kind": kind, "url_env": url_env, "secret_env": secret_env, **extra})


@pytest.fixture()
def robots(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The three robots on a local receiver, their URLs and secrets in environment variables as operators set them."""
    with chat_robots({WECOM_KEY: None, DING_TOKEN: DING_SECRET, FEISHU_TOKEN: FEISHU_SECRET}) as r:
        monkeypatch.setenv("WECOM_URL", r.wecom_url(WECOM_KEY))
        monkeypatch.setenv("DING_URL", r.dingtalk_url(DING_TOKEN))
        monkeypatch.setenv("DING_SECRET", DING_SECRET)
        monkeypatch.setenv("FEISHU_URL", r.feishu_url(FEISHU_TOKEN))
        monkeypatch.setenv("FEISHU_SECRET", FEISHU_SECRET)
        yield r


def assert_no_secret(*texts: object) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in str(text), f"a secret leaked into: {str(text)[:300]}"


# ---------------------------------------------------------------- settings


def onboarding_problems(tmp_path: Path, notify: list[dict[str, Any]]) -> list[str]:
    configs = write_configs(tmp_path, {"b1": {}}, playbook=simple_playbook(), onboarding={"notify": notify})
    with pytest.raises(ConfigError) as err:
        load_portfolio(configs, cache=False)
    return err.value.problems


NO_URL = (
    "notify[0]: needs exactly one of url_env (an environment variable) or url_block (a Prefect Secret block) "
    "for the webhook URL"
)
URL_IN_YAML = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=" + WECOM_KEY


@pytest.mark.parametrize(
    ("notify", "expected"),
    [
        pytest.param(
            [{"kind": "wecom", "url_env": URL_IN_YAML}],
            "notify[0].url_env: is a URL: webhook URLs hold their key and never sit in YAML; "
            "put it in an environment variable and write that name in url_env",
            id="url-in-url_env",
        ),
        pytest.param(
            [{"kind": "dingtalk", "url": URL_IN_YAML}],
            "notify[0].url: must not sit in YAML: put it in an environment variable and name that in url_env "
            "(or in a Prefect Secret block named in url_block)",
            id="url-key",
        ),
        pytest.param(
            [{"kind": "feishu", "url_env": "FEISHU_URL", "secret": FEISHU_SECRET}],
            "notify[0].secret: must not sit in YAML: put it in an environment variable and name that in secret_env "
            "(or in a Prefect Secret block named in secret_block)",
            id="secret-key",
        ),
        pytest.param(
            [{"kind": "dingtalk", "url_env": "DING_URL", "secret_env": DING_SECRET.lower()}],
            "notify[0].secret_env: must be the name of an environment variable (A-Z, 0-9 and _), not the value itself",
            id="secret-value-in-secret_env",
        ),
        pytest.param(
            [{"kind": "feishu", "url_block": "Feishu URL"}],
            "notify[0].url_block: must be the name of a Prefect Secret block (lowercase letters, digits and dashes), "
            "not the value itself",
            id="bad-block-name",
        ),
        pytest.param(
            [{"kind": "wecom"}],
            NO_URL,
            id="no-url",
        ),
        pytest.param(
            [{"kind": "wecom", "url_env": "A", "url_block": "a"}],
            NO_URL,
            id="two-urls",
        ),
        pytest.param(
            [{"kind": "feishu", "url_env": "A", "secret_env": "B", "secret_block": "b"}],
            "notify[0]: give the signing secret once: secret_env or secret_block, not both",
            id="two-secrets",
        ),
        pytest.param(
            [{"kind": "wecom", "url_env": "A", "secret_env": "B"}],
            "notify[0]: wecom robots do not sign (the key in the URL is their secret): remove secret_env/secret_block",
            id="wecom-secret",
        ),
        pytest.param(
            [{"kind": "wecom", "url_env": "A", "events": ["digest", "overdue", "digest"]}],
            "notify[0].events: lists digest twice",
            id="event-twice",
        ),
        pytest.param(
            [{"kind": "wecom", "url_env": "A"}, {"kind": "slack", "url_env": "B"}],
            "notify[1].kind: must be one of 'wecom', 'dingtalk' or 'feishu' (got 'slack')",
            id="unknown-kind",
        ),
        pytest.param(
            [{"kind": "wecom", "url_env": "A", "events": ["digest", "promoted"]}],
            "notify[0].events[1]: must be one of 'awaiting_approval', 'overdue', 'demoted', 'exited', 'digest' "
            "or 'escalation' (got 'promoted')",
            id="unknown-event",
        ),
    ],
)
def test_bad_channels_are_named_by_file_and_field(tmp_path: Path, notify: list[dict[str, Any]], expected: str) -> None:
    problems = onboarding_problems(tmp_path, notify)
    # one problem, naming the file and the field path, as every config error does
    assert problems == [f"configs/onboarding.yaml: {expected}"]
    assert_no_secret(*problems)  # a value pasted where a name belongs is refused without being repeated


def test_a_channel_defaults_to_every_event_and_survives_environment_overrides() -> None:
    onboarding = Onboarding.model_validate(
        {"notify": [{"kind": "dingtalk", "url_env": "DING_URL", "secret_env": "DING_SECRET"}]}
    )
    # BRANDSTEPS_TIMEZONE rebuilds the model from its dump: the channels must come through unchanged
    again = apply_environment(onboarding, {"BRANDSTEPS_TIMEZONE": "Asia/Tokyo"})
    assert again.notify == onboarding.notify and again.timezone == "Asia/Tokyo"
    only = again.notify[0]
    assert only.events == ["awaiting_approval", "overdue", "demoted", "exited", "digest", "escalation"]
    assert only.label == "dingtalk:DING_URL"  # no name: the kind and where the URL lives, never the URL


# ---------------------------------------------------------------- each platform's request


MESSAGE = Message("digest", "【日报】2026-01-05", "- 达人分销：3（+1）", "http://127.0.0.1:4200/runs/flow-run/abc")


@pytest.mark.parametrize(
    ("kind", "env", "secret_env", "expected"),
    [
        pytest.param(
            "wecom",
            "WECOM_URL",
            None,
            # the title in bold above the text; the link as the last line
            {
                "msgtype": "markdown",
                "markdown": {
                    "content": "**【日报】2026-01-05**\n- 达人分销：3（+1）\n\n"
                    "[在 Prefect 中打开](http://127.0.0.1:4200/runs/flow-run/abc)"
                },
            },
            id="wecom",
        ),
        pytest.param(
            "dingtalk",
            "DING_URL",
            "DING_SECRET",
            # 钉钉 shows only text in the chat: the title leads it as a heading (and is the notification preview)
            {
                "msgtype": "markdown",
                "markdown": {
                    "title": "【日报】2026-01-05",
                    "text": "#### 【日报】2026-01-05\n\n- 达人分销：3（+1）\n\n"
                    "[在 Prefect 中打开](http://127.0.0.1:4200/runs/flow-run/abc)",
                },
            },
            id="dingtalk",
        ),
        pytest.param(
            "feishu",
            "FEISHU_URL",
            "FEISHU_SECRET",
            # a card: the title in its header, the text as its markdown element
            {
                "msg_type": "interactive",
                "card": {
                    "config": {"wide_screen_mode": True},
                    "header": {"title": {"tag": "plain_text", "content": "【日报】2026-01-05"}, "template": "blue"},
                    "elements": [
                        {
                            "tag": "markdown",
                            "content": "- 达人分销：3（+1）\n\n[在 Prefect 中打开](http://127.0.0.1:4200/runs/flow-run/abc)",
                        }
                    ],
                },
            },
            id="feishu",
        ),
    ],
)
def test_each_platform_gets_its_format_and_signature(
    robots: Any, kind: str, env: str, secret_env: str | None, expected: dict[str, Any]
) -> None:
    deliveries = send_all([channel(kind, env, secret_env)], MESSAGE, **FAST)
    # the receiver accepted it: format and (for 钉钉 and 飞书) the signature recomputed from the secret both checked
    assert deliveries == [Delivery(f"{kind}:{env}", True, 1, None)]
    [body] = robots.bodies(kind)
    body.pop("timestamp", None), body.pop("sign", None)  # checked by the receiver; they change every second
    assert body == expected


@pytest.mark.parametrize(
    ("kind", "url_env", "secret_env", "expected"),
    [
        # the platforms' own answers to a wrong signature or key, not retried: the next attempt would be as wrong
        pytest.param(
            "dingtalk",
            "DING_URL",
            "WRONG_SECRET",
            "HTTP 200, errcode 310000: sign not match",
            id="dingtalk-wrong-secret",
        ),
        pytest.param(
            "feishu",
            "FEISHU_URL",
            "WRONG_SECRET",
            "HTTP 200, code 19021: sign match fail or timestamp is not within one hour from current time",
            id="feishu-wrong-secret",
        ),
        pytest.param("dingtalk", "DING_URL", None, "HTTP 200, errcode 310000: sign not match", id="dingtalk-unsigned"),
        pytest.param(
            "wecom",
            "WRONG_WECOM_URL",
            None,
            "HTTP 200, errcode 93000: invalid webhook url / token is not exist",
            id="wecom-wrong-key",
        ),
    ],
)
def test_a_rejected_message_is_reported_once_without_secrets(
    robots: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    url_env: str,
    secret_env: str | None,
    expected: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("WRONG_SECRET", "SECnot-the-one")
    monkeypatch.setenv("WRONG_WECOM_URL", robots.wecom_url("wk-unknown-key"))
    [delivery] = send_all([channel(kind, url_env, secret_env)], MESSAGE, **FAST)
    host = robots.base.removeprefix("http://")
    assert delivery == Delivery(f"{kind}:{url_env}", False, 1, f"{host}: {expected}")
    assert robots.requests == 1 and robots.received == []
    assert_no_secret(delivery, caplog.text)


@pytest.mark.parametrize(
    ("script", "always", "expected"),
    [
        # a 500 is worth another try: the second attempt goes through
        pytest.param([500], None, (True, 2, None), id="500-then-ok"),
        # a rate-limit answer (429) likewise
        pytest.param([429, 502], None, (True, 3, None), id="429-502-then-ok"),
        # still failing after the three attempts: reported, with the host only
        pytest.param([], 500, (False, 3, "HTTP 500"), id="always-500"),
    ],
)
def test_transient_failures_are_retried(
    robots: Any, caplog: pytest.LogCaptureFixture, script: list[int], always: int | None, expected: tuple
) -> None:
    caplog.set_level(logging.DEBUG)
    robots.script[FEISHU_TOKEN] = list(script)
    if always:
        robots.always[FEISHU_TOKEN] = always
    [delivery] = send_all([channel("feishu", "FEISHU_URL", "FEISHU_SECRET")], MESSAGE, **FAST)
    ok, attempts, error = expected
    host = robots.base.removeprefix("http://")
    assert delivery == Delivery("feishu:FEISHU_URL", ok, attempts, f"{host}: {error}" if error else None)
    assert len(robots.bodies("feishu")) == (1 if ok else 0)
    assert_no_secret(delivery, caplog.text)


def test_a_robot_that_cannot_be_reached_or_read_is_reported(robots: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.prefect_process import free_port

    port = free_port()  # nothing listens there
    monkeypatch.setenv("DOWN_URL", f"http://127.0.0.1:{port}/cgi-bin/webhook/send?key={WECOM_KEY}")
    monkeypatch.delenv("UNSET_URL", raising=False)
    down, unset = send_all([channel("wecom", "DOWN_URL"), channel("wecom", "UNSET_URL")], MESSAGE, **FAST)
    # connection refused is retried like any network error, then reported with the host, never the key
    assert down == Delivery(
        "wecom:DOWN_URL",
        False,
        3,
        f"127.0.0.1:{port}: cannot reach the robot: ConnectionRefusedError: [Errno 111] Connection refused",
    )
    # a variable that is not set: no attempt, and the error names the variable
    assert unset == Delivery(
        "wecom:UNSET_URL", False, 0, "cannot read the channel's settings: environment variable UNSET_URL is not set"
    )


def test_only_subscribed_channels_get_a_message_and_a_failed_channel_is_skipped_for_the_rest(robots: Any) -> None:
    robots.always[DING_TOKEN] = 503
    channels = [
        channel("wecom", "WECOM_URL", events=["digest"], name="运营群"),
        channel("dingtalk", "DING_URL", "DING_SECRET"),
        channel("feishu", "FEISHU_URL", "FEISHU_SECRET", events=["overdue", "digest"]),
    ]
    messages = [Message("overdue", "超期", "- a"), Message("demoted", "降级", "- b"), Message("digest", "日报", "- c")]
    sent = send_batch(channels, messages, retry=Retry(attempts=2, delay_s=0.0, timeout_s=5.0))
    got = [(m.kind, d.channel, d.ok, d.attempts, d.error) for m, d in sent]
    host = robots.base.removeprefix("http://")
    assert got == [
        ("overdue", "dingtalk:DING_URL", False, 2, f"{host}: HTTP 503"),  # down: two attempts
        ("overdue", "feishu:FEISHU_URL", True, 1, None),
        # 钉钉 failed this cycle already: not tried again (one round of retries per cycle, not one per message)
        ("demoted", "dingtalk:DING_URL", False, 0, "not sent: an earlier message of this cycle failed on this channel"),
        ("digest", "运营群", True, 1, None),  # wecom takes only the digest, under its name
        ("digest", "dingtalk:DING_URL", False, 0, "not sent: an earlier message of this cycle failed on this channel"),
        ("digest", "feishu:FEISHU_URL", True, 1, None),
    ]
    assert robots.requests == 2 + 1 + 1 + 1


def test_a_long_message_fits_the_wecom_limit(robots: Any) -> None:
    text = "\n".join(f"- **品牌 {i}** (b{i:05d}) · 达人分销 → 公域流量 · gmv ¥1,234.00 >= ¥300.00" for i in range(200))
    [delivery] = send_all([channel("wecom", "WECOM_URL")], Message("overdue", "超期", text), **FAST)
    assert delivery.ok  # the receiver refuses content over 4096 bytes, as 企业微信 does
    content = robots.bodies("wecom")[0]["markdown"]["content"]
    assert len(content.encode()) <= WECOM_MAX_BYTES and content.endswith("gmv ¥1,234.00 >= ¥300.00" + CUT_NOTE)


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        pytest.param("短", 100, "短", id="fits"),
        # 92 bytes (three lines of 30, two newlines) into 74: the note takes 34, leaving 40: the first line
        pytest.param(
            "\n".join(["一二三四五六七八九十"] * 3), 74, "一二三四五六七八九十" + CUT_NOTE, id="cut-at-a-line"
        ),
        # one long line: cut inside it, never in the middle of a character
        pytest.param("一二三四五六七八九十" * 3, 40, "一二" + CUT_NOTE, id="cut-in-a-line"),
    ],
)
def test_fit(text: str, limit: int, expected: str) -> None:
    assert fit(text, limit) == expected
    assert len(fit(text, limit).encode()) <= limit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(f"bad URL http://h/cgi-bin/webhook/send?key={WECOM_KEY}", "bad URL ***", id="whole-url"),
        pytest.param(f"token {DING_TOKEN} refused", "token *** refused", id="query-value"),
        pytest.param(
            f"hook /open-apis/bot/v2/hook/{FEISHU_TOKEN}", "hook /open-apis/bot/v2/hook/***", id="path-segment"
        ),
        pytest.param(f"secret {DING_SECRET}", "secret ***", id="secret"),
    ],
)
def test_scrub_hides_urls_keys_and_secrets(text: str, expected: str) -> None:
    urls = (
        f"http://h/cgi-bin/webhook/send?key={WECOM_KEY}",
        f"http://h/robot/send?access_token={DING_TOKEN}",
        f"http://h/open-apis/bot/v2/hook/{FEISHU_TOKEN}",
    )
    assert scrub(text, (*urls, DING_SECRET)) == expected


# ---------------------------------------------------------------- the cycle's messages


def decision(brand_id: str, stage: str, action: str, **extra: Any) -> dict[str, Any]:
    to_stage = {"demote": "affiliate_trial", "exit": "exited", "advance": "self_broadcast"}.get(action, stage)
    row = {
        "brand_id": brand_id,
        "as_of": pd.Timestamp(AS_OF),
        "stage": stage,
        "to_stage": to_stage,
        "verdict": "PASS",
        "action": action,
        "reason": "all must criteria pass",
        "action_reason": "",
        "overdue": False,
        "days_in_stage": 3,
        "stage_entered_on": pd.Timestamp("2026-01-02"),
        "awaiting_since": None,
    }
    return {**row, **extra}


def news_of(rows: list[dict[str, Any]], links: dict[str, str] | None = None, **summary: Any) -> CycleNews:
    decisions = pd.DataFrame(rows)
    ids = decisions["brand_id"].tolist()
    cohorts = pd.DataFrame(
        {"stage": decisions["stage"].tolist(), "status": "due", "last_as_of": pd.Timestamp("2026-01-04")},
        index=pd.Index(ids, name="brand_id"),
    )
    names = pd.Series({b: f"品牌*{b[-2:]}" for b in ids})  # a * in a name must not turn the line bold
    s = CycleSummary(as_of=AS_OF, decided=len(rows), funnel=funnel(cohorts, decisions), **summary)
    max_days = pd.Series(10.0, index=cohorts.index)
    return CycleNews(s, decisions, cohorts, names, max_days, links or {}, "http://ui/runs/flow-run/r1")


def test_awaiting_approval_lists_brands_with_their_review_run() -> None:
    news = news_of(
        [
            decision("b01", "public_traffic", "await_approval", awaiting_since="2026-01-05"),
            decision("b02", "self_broadcast", "await_approval", awaiting_since="2026-01-05"),
            decision(
                "b03", "public_traffic", "await_approval", awaiting_since="2026-01-02"
            ),  # waiting since before: not news
        ],
        links={"b01": "http://ui/runs/flow-run/rv1"},
    )
    [message] = [m for m in cycle_messages(news) if m.kind == "awaiting_approval"]
    assert message.title == "【待审批】2 个品牌等待审批（2026-01-05）"
    assert message.text == (
        "已连续通过本阶段，等待人工审批后晋级：\n"
        "- **品牌＊01** (b01) · 公域流量 → 品牌自播 · [去审批](http://ui/runs/flow-run/rv1)\n"
        "- **品牌＊02** (b02) · 品牌自播 → 私域复购\n\n"
        # b02 has no review run (no serving process): the terminal command instead
        "没有审批链接的品牌，在终端审批：`brandsteps approve 品牌ID --by 姓名 --reason 理由`"
    )
    assert message.link is None  # two brands: each line has its own link


def test_overdue_demoted_and_exited_each_get_one_message() -> None:
    news = news_of(
        [
            # 11 days with a limit of 10, decided yesterday at 10 days: overdue as of today
            decision(
                "b01",
                "public_traffic",
                "hold",
                verdict="FAIL",
                reason="gmv ¥107.00 < ¥300.00",
                overdue=True,
                days_in_stage=11,
            ),
            # overdue already yesterday (12 days today): said then, not again
            decision("b02", "public_traffic", "hold", overdue=True, days_in_stage=12),
            decision("b03", "self_broadcast", "demote", verdict="FAIL", reason="refund_rate 41% > 30%"),
            decision("b04", "private_repurchase", "exit", verdict="FAIL", reason="gmv ¥0.00 < ¥300.00"),
        ]
    )
    messages = {m.kind: m for m in cycle_messages(news)}
    assert list(messages) == ["overdue", "demoted", "exited", "digest"]  # no approval wait today
    assert (messages["overdue"].title, messages["overdue"].text) == (
        "【超期】1 个品牌超过阶段期限（2026-01-05）",
        "在本阶段停留超过期限，请跟进：\n- **品牌＊01** (b01) · 公域流量第 11 天（上限 10 天） · FAIL：gmv ¥107.00 < ¥300.00",
    )
    assert (messages["demoted"].title, messages["demoted"].text) == (
        "【降级】1 个品牌降级（2026-01-05）",
        "- **品牌＊03** (b03) · 品牌自播 → 达人分销 · refund_rate 41% > 30%",
    )
    assert (messages["exited"].title, messages["exited"].text) == (
        "【退出】1 个品牌退出（2026-01-05）",
        "- **品牌＊04** (b04) · 私域复购 → 已退出 · gmv ¥0.00 < ¥300.00",
    )
    assert messages["exited"].link == "http://ui/runs/flow-run/r1"  # the cycle run, where the decision tables are


def test_five_hundred_brands_make_one_message_of_twenty_lines() -> None:
    news = news_of([decision(f"b{i:03d}", "public_traffic", "demote") for i in range(500)])
    [demoted] = [m for m in cycle_messages(news) if m.kind == "demoted"]
    lines = demoted.text.splitlines()
    assert demoted.title == "【降级】500 个品牌降级（2026-01-05）"
    assert len(lines) == 21 and lines[-1] == "- ……还有 480 个品牌，见 Prefect 的 decision-changes 表"


def test_the_digest_shows_the_funnel_change_and_who_needs_a_person() -> None:
    rows = [
        decision("b01", "affiliate_trial", "advance", to_stage="public_traffic"),
        decision("b02", "public_traffic", "await_approval", awaiting_since="2026-01-03"),
        decision("b03", "self_broadcast", "demote", verdict="FAIL", to_stage="public_traffic"),
        decision("b04", "self_broadcast", "hold", verdict="ERROR", overdue=True, days_in_stage=15),
        decision("b05", "private_repurchase", "exit", verdict="FAIL"),
    ]
    news = news_of(
        rows,
        verdicts={"PASS": 2, "FAIL": 2, "INCONCLUSIVE": 0, "ERROR": 1},
        actions={"advance": 1, "graduate": 0, "await_approval": 1, "demote": 1, "recycle": 0, "exit": 1, "hold": 1},
        overdue=["b04"],
        errors=["b04"],
        quarantined_rows=3,
    )
    digest = cycle_messages(news)[-1]
    assert digest.title == "【日报】2026-01-05 入驻周期：5 个品牌已决策"
    assert digest.link == "http://ui/runs/flow-run/r1"
    assert digest.text.splitlines() == [
        "**阶段漏斗**（括号内为较上一周期的变化）",
        "- 达人分销：0（-1）",  # b01 advanced out
        "- 公域流量：3（+2）",  # b02 stays, b01 came up, b03 came down
        "- 品牌自播：1（-1）",  # b03 demoted, b04 stays
        "- 私域复购：0（-1）",  # b05 exited
        "- 渠道特供品：0",
        "- 已毕业：0",
        "- 已退出：1（+1）",
        "**变动**：晋级 1 · 等待审批 1 · 降级 1 · 退出 1",  # holds and zero counts left out
        "**结论**：PASS 2 · FAIL 2 · ERROR 1",
        "**需要人工处理**",
        "- 等待审批 1：**品牌＊02** (b02)",  # waiting since the 3rd: still needs a person, though not news
        "- 超期 1：**品牌＊04** (b04)",
        "- 数据校验失败（ERROR） 1：**品牌＊04** (b04)",
        "- 隔离的数据行 3：见 Prefect 的 quarantined-rows 表",
    ]


def test_a_rerun_that_wrote_nothing_says_nothing() -> None:
    news = news_of([decision("b01", "public_traffic", "demote")])
    assert cycle_messages(written_news(news, [])) == []  # the first run of the day said it already
    assert [m.kind for m in cycle_messages(written_news(news, ["b01"]), digest=False)] == [
        "demoted"
    ]  # a shard: no digest


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("a*b [x](y) `c`", "a＊b ［x］(y) ｀c｀", id="markup"),
        pytest.param("refund_rate < 30%", "refund_rate < 30%", id="plain"),
    ],
)
def test_plain_keeps_names_from_being_read_as_markdown(text: str, expected: str) -> None:
    assert plain(text) == expected


# ---------------------------------------------------------------- the flow


@pytest.mark.integration
def test_the_cycle_sends_its_digest_and_reports_a_failing_channel(
    prefect_server: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.blocks.system import Secret
    from prefect.settings import PREFECT_API_URL

    from flows.onboarding_cycle import onboarding_cycle
    from tests.prefect_process import drain_prefect_workers, run_logs

    with chat_robots({WECOM_KEY: None, DING_TOKEN: DING_SECRET, FEISHU_TOKEN: FEISHU_SECRET}) as r:
        monkeypatch.setenv("TEAM_WECOM_URL", r.wecom_url(WECOM_KEY))
        monkeypatch.setenv("TEAM_DING_URL", r.dingtalk_url(DING_TOKEN))
        monkeypatch.setenv("TEAM_DING_SECRET", DING_SECRET)
        Secret(value=r.feishu_url(FEISHU_TOKEN)).save("team-feishu-url", overwrite=True)
        Secret(value=FEISHU_SECRET).save("team-feishu-secret", overwrite=True)
        r.always[DING_TOKEN] = 500  # 钉钉 is down all cycle
        notify = [
            {"kind": "wecom", "url_env": "TEAM_WECOM_URL", "name": "运营群"},
            {"kind": "dingtalk", "url_env": "TEAM_DING_URL", "secret_env": "TEAM_DING_SECRET"},
            {
                "kind": "feishu",
                "url_block": "team-feishu-url",
                "secret_block": "team-feishu-secret",
                "events": ["digest"],
            },
        ]
        configs = write_configs(
            tmp_path,
            {"b1": {"name": "山野茶"}, "b2": {}},
            playbook=simple_playbook(),
            onboarding={"metrics": "data/metrics.csv", "ledger": "sqlite:///data/ledger.sqlite", "notify": notify},
        )
        (tmp_path / "data").mkdir()
        days = pd.date_range("2026-01-01", AS_OF)
        pd.DataFrame(
            [{"brand_id": b, "date": d, "gmv": 600.0, "orders": 5.0} for b in ("b1", "b2") for d in days]
        ).to_csv(tmp_path / "data" / "metrics.csv", index=False)
        state = onboarding_cycle(as_of=AS_OF, configs=str(configs), return_state=True)
        assert state.is_completed() and state.result().decided == 2  # the failing channel did not fail the cycle
        # the digest reached both working robots: 企业微信 from an environment variable, 飞书 from Secret blocks (signed)
        [wecom] = r.bodies("wecom")
        [feishu] = r.bodies("feishu")
        assert wecom["markdown"]["content"].startswith("**【日报】2026-01-05 入驻周期：2 个品牌已决策**\n**阶段漏斗**")
        assert feishu["card"]["header"]["title"]["content"] == "【日报】2026-01-05 入驻周期：2 个品牌已决策"
        assert r.requests == 1 + 3 + 1  # wecom once, 钉钉 three attempts, 飞书 once

    flow_run_id = str(state.state_details.flow_run_id)
    drain_prefect_workers()
    artifact = asyncio.run(_artifact(flow_run_id, "notifications"))
    host = r.base.removeprefix("http://")
    assert artifact["data"].splitlines() == [
        "| channel | kind | result | attempts | error |",
        "|---|---|---|---|---|",
        "| 运营群 | digest | ok | 1 |  |",
        f"| dingtalk:TEAM_DING_URL | digest | failed | 3 | {host}: HTTP 500 |",
        "| feishu:team-feishu-url | digest | ok | 1 |  |",
    ]
    logs = [log["message"] for log in run_logs(str(PREFECT_API_URL.value())) if log.get("flow_run_id") == flow_run_id]
    assert f"Chat alert digest to dingtalk:TEAM_DING_URL failed (3 attempts): {host}: HTTP 500" in logs
    assert_no_secret(artifact, logs)


async def _artifact(flow_run_id: str, key: str) -> dict[str, Any]:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        response = await client._client.post(
            "/artifacts/filter",
            json={
                "offset": 0,
                "limit": 50,
                "artifacts": {"flow_run_id": {"any_": [flow_run_id]}, "key": {"any_": [key]}},
            },
        )
        response.raise_for_status()
        [found] = response.json()
        return dict(found)
