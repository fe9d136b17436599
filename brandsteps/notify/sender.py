"""Posting messages to 企业微信, 钉钉 and 飞书 robots: each one's JSON, signature and answer, retried, never raising.

Plain urllib, not httpx or Apprise: httpx logs every request URL (the robot's key or token is in it) at INFO on its
`httpx` logger, and Apprise's plugins post to fixed hosts and do not sign 飞书 messages.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from brandsteps.notify.config import NotifyChannel, SecretRef

# What each platform accepts in one message (企业微信 markdown: 4096 bytes; 钉钉 and 飞书: 20 KB per request).
MAX_BYTES = {"wecom": 4096, "dingtalk": 19_000, "feishu": 18_000}
CUT_NOTE = "\n…（消息过长，已截断）"
ANSWER_BYTES = 4096  # a robot's answer is a few dozen bytes; more is not read
# Answers that say "too many messages, try later": worth another try, unlike a wrong key or signature.
RATE_LIMITED = {"wecom": {45009}, "dingtalk": {130101}, "feishu": {11232}}


@dataclass(frozen=True)
class Message:
    """One chat message: kind (an event kind of the channels' `events`), a title and markdown text."""

    kind: str
    title: str
    text: str
    link: str | None = None


@dataclass(frozen=True)
class Delivery:
    """How one message went to one channel; error never holds a URL or secret."""

    channel: str
    ok: bool
    attempts: int
    error: str | None


class ChannelError(Exception):
    """A send that failed; transient: the next attempt may go through (network, 5xx, rate limit)."""

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient


SecretResolver = Callable[[SecretRef], str]


def resolve_from_env(ref: SecretRef) -> str:
    """The value of an environment variable; Secret blocks need the task layer's resolver (Prefect)."""
    if ref.source != "env":
        raise ChannelError(f"{ref.describe()} can only be read inside a Prefect run")
    value = os.environ.get(ref.name, "").strip()
    if not value:
        raise ChannelError(f"{ref.describe()} is not set")
    return value


# ---------------------------------------------------------------- the platforms' requests


@dataclass(frozen=True)
class Request:
    url: str
    body: bytes


def fit(text: str, max_bytes: int) -> str:
    """text cut at a line end so that its UTF-8 fits max_bytes, with a note saying so."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    kept = raw[: max_bytes - len(CUT_NOTE.encode("utf-8"))].decode("utf-8", errors="ignore")
    return kept.rpartition("\n")[0] + CUT_NOTE if "\n" in kept else kept + CUT_NOTE


def with_link(message: Message) -> str:
    return message.text + (f"\n\n[在 Prefect 中打开]({message.link})" if message.link else "")


def dingtalk_sign(secret: str, timestamp_ms: str) -> str:
    """钉钉: base64(HmacSHA256(key=secret, msg="timestamp\\nsecret")), the URL's sign parameter (url-encoded there)."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def feishu_sign(secret: str, timestamp_s: str) -> str:
    """飞书: base64(HmacSHA256(key="timestamp\\nsecret", msg=empty))."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _json(payload: dict[str, object]) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def wecom_request(url: str, message: Message) -> Request:
    content = fit(f"**{message.title}**\n{with_link(message)}", MAX_BYTES["wecom"])
    return Request(url, _json({"msgtype": "markdown", "markdown": {"content": content}}))


def dingtalk_request(url: str, secret: str | None, message: Message, now: float) -> Request:
    if secret:
        stamp = str(int(now * 1000))
        query = urllib.parse.urlencode({"timestamp": stamp, "sign": dingtalk_sign(secret, stamp)})
        url = f"{url}{'&' if '?' in url else '?'}{query}"
    # 钉钉 shows only the text in the chat (the title is the notification preview): the title leads the text too
    text = fit(f"#### {message.title}\n\n{with_link(message)}", MAX_BYTES["dingtalk"])
    return Request(url, _json({"msgtype": "markdown", "markdown": {"title": message.title, "text": text}}))


def feishu_request(url: str, secret: str | None, message: Message, now: float) -> Request:
    card = {
        "config": {"wide_screen_mode": True},
        "header": {"title": {"tag": "plain_text", "content": message.title}, "template": "blue"},
        "elements": [{"tag": "markdown", "content": fit(with_link(message), MAX_BYTES["feishu"])}],
    }
    payload: dict[str, object] = {"msg_type": "interactive", "card": card}
    if secret:
        stamp = str(int(now))
        payload = {"timestamp": stamp, "sign": feishu_sign(secret, stamp), **payload}
    return Request(url, _json(payload))


def build_request(kind: str, url: str, secret: str | None, message: Message, now: float) -> Request:
    """The POST one platform expects for this message (signed with a fresh timestamp when it has a secret)."""
    if kind == "wecom":
        return wecom_request(url, message)
    if kind == "dingtalk":
        return dingtalk_request(url, secret, message, now)
    return feishu_request(url, secret, message, now)


def check_answer(kind: str, status: int, answer: bytes) -> None:
    """Raise ChannelError unless the robot accepted the message (HTTP 2xx and its code 0)."""
    if status == 429 or status >= 500:
        raise ChannelError(f"HTTP {status}", transient=True)
    try:
        doc = json.loads(answer.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ChannelError(f"HTTP {status}, an answer that is not JSON") from None
    if not isinstance(doc, dict):
        raise ChannelError(f"HTTP {status}, an answer that is not a JSON object")
    key = "errcode" if kind in ("wecom", "dingtalk") else ("code" if "code" in doc else "StatusCode")
    code = doc.get(key)
    if 200 <= status < 300 and code == 0:
        return
    text = str(doc.get("errmsg") or doc.get("msg") or doc.get("StatusMessage") or "")[:200]
    raise ChannelError(
        f"HTTP {status}, {key} {code}: {text}".rstrip(": "), transient=code in RATE_LIMITED.get(kind, set())
    )


# ---------------------------------------------------------------- sending


def post(request: Request, timeout_s: float) -> tuple[int, bytes]:
    """POST the JSON body; (status, the answer's first bytes). A failed connection raises a transient ChannelError."""
    import http.client
    import urllib.error
    import urllib.request  # imported when sending: loading configs (which import this package) stays quick

    if urllib.parse.urlsplit(request.url).scheme not in ("http", "https"):
        raise ChannelError("the webhook URL is not an http(s) URL")
    outgoing = urllib.request.Request(  # noqa: S310 - http(s) only, checked above
        request.url, data=request.body, method="POST", headers={"Content-Type": "application/json; charset=utf-8"}
    )
    try:
        with urllib.request.urlopen(outgoing, timeout=timeout_s) as response:  # noqa: S310 - http(s) only, as above
            return int(response.status), response.read(ANSWER_BYTES)
    except urllib.error.HTTPError as exc:
        with exc:
            return int(exc.code), exc.read(ANSWER_BYTES)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise ChannelError(f"cannot reach the robot: {type(reason).__name__}: {reason}", transient=True) from None


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """text with every secret (the URL, its last path segment and query values, the signing secret) replaced by ***.

    Where robots keep their key: 企业微信 ?key=, 钉钉 ?access_token=, 飞书 the last segment of the path.
    """
    hidden: set[str] = set()
    for value in secrets:
        if not value:
            continue
        hidden.add(value)
        parts = urllib.parse.urlsplit(value)
        last = parts.path.rstrip("/").rpartition("/")[2]
        if len(last) >= 6:  # a token, not a word like "send"
            hidden.add(last)
        hidden.update(v for _, v in urllib.parse.parse_qsl(parts.query) if v)
        hidden.update(v for v in (parts.username, parts.password) if v)
    for value in sorted(hidden, key=len, reverse=True):  # the URL before the key inside it
        text = text.replace(value, "***")
        text = text.replace(urllib.parse.quote(value, safe=""), "***")
    return text


def where(url: str) -> str:
    """The robot's host (and port) for messages: never the path or query that hold its key."""
    try:
        parts = urllib.parse.urlsplit(url)
        return f"{parts.hostname}{f':{parts.port}' if parts.port else ''}" if parts.hostname else "the webhook"
    except ValueError:
        return "the webhook"


@dataclass(frozen=True)
class Retry:
    """How hard to try one channel: attempts in all, the pause before the n-th retry (n × delay_s), a POST's timeout."""

    attempts: int = 3
    delay_s: float = 1.0
    timeout_s: float = 10.0


def _attempts(channel: NotifyChannel, url: str, secret: str | None, message: Message, retry: Retry) -> Delivery:
    error = ChannelError("not sent")
    attempt = 0
    for attempt in range(1, max(retry.attempts, 1) + 1):
        try:
            status, answer = post(build_request(channel.kind, url, secret, message, time.time()), retry.timeout_s)
            check_answer(channel.kind, status, answer)
            return Delivery(channel.label, True, attempt, None)
        except ChannelError as exc:
            error = exc
        if not error.transient:
            break
        if attempt < retry.attempts:
            time.sleep(retry.delay_s * attempt)
    return Delivery(channel.label, False, attempt, scrub(f"{where(url)}: {error}", (url, secret)))


def send_one(channel: NotifyChannel, message: Message, resolve_secret: SecretResolver, retry: Retry) -> Delivery:
    """Send message to one channel; any failure is a Delivery(ok=False) with a secret-free error."""
    url: str | None = None
    secret: str | None = None
    try:
        url = resolve_secret(channel.webhook)
        signing = channel.signing_secret
        secret = resolve_secret(signing) if signing is not None else None
    except Exception as exc:  # a resolver's own words name the variable or block, never its value
        return Delivery(channel.label, False, 0, scrub(f"cannot read the channel's settings: {exc}", (url, secret)))
    try:
        return _attempts(channel, url, secret, message, retry)
    except Exception as exc:  # a bug here must not cost the cycle its other channels
        return Delivery(channel.label, False, 1, scrub(f"{type(exc).__name__}: {exc}", (url, secret)))


def send_all(
    channels: Sequence[NotifyChannel],
    message: Message,
    *,
    resolve_secret: SecretResolver = resolve_from_env,
    attempts: int = 3,
    retry_delay_s: float = 1.0,
    timeout_s: float = 10.0,
) -> list[Delivery]:
    """Send message to every channel whose events include its kind, each retried on network errors, 5xx and rate
    limits; never raises: a channel that still fails gives Delivery(ok=False, error=...) without URL or secret."""
    retry = Retry(attempts, retry_delay_s, timeout_s)
    return [send_one(c, message, resolve_secret, retry) for c in channels if message.kind in c.events]


SKIPPED = "not sent: an earlier message of this cycle failed on this channel"


def send_batch(
    channels: Sequence[NotifyChannel],
    messages: Sequence[Message],
    *,
    resolve_secret: SecretResolver = resolve_from_env,
    retry: Retry = Retry(),  # noqa: B008 - frozen, so one shared default is safe
) -> list[tuple[Message, Delivery]]:
    """Each message to its channels in order; a channel that failed one (after its retries) is skipped for the rest,
    so a robot that is down costs the cycle one round of retries, not one per message."""
    failed: set[int] = set()  # positions in channels: two channels may share a label
    out: list[tuple[Message, Delivery]] = []
    for message in messages:
        for i, channel in enumerate(channels):
            if message.kind not in channel.events:
                continue
            delivery = (
                Delivery(channel.label, False, 0, SKIPPED)
                if i in failed
                else send_one(channel, message, resolve_secret, retry)
            )
            if not delivery.ok:
                failed.add(i)
            out.append((message, delivery))
    return out
