"""A local stand-in for 企业微信, 钉钉 and 飞书 robots: checks each platform's JSON and signature as the platform does.

One threaded HTTP server on 127.0.0.1 serves the three webhook paths (the key or token in the URL picks the robot):

    /cgi-bin/webhook/send?key=KEY                                  企业微信 group robot (no signature)
    /robot/send?access_token=TOKEN&timestamp=MS&sign=S             钉钉 custom robot, signed with its secret
    /open-apis/bot/v2/hook/TOKEN   {"timestamp", "sign", ...}      飞书 custom bot, signed with its secret

Signatures are recomputed here from the secret and timestamp (not with the code under test) and a wrong one gets the
platform's own error answer. `script` makes a robot answer HTTP statuses first (500 then OK: a retried send).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

WECOM_PATH = "/cgi-bin/webhook/send"
DINGTALK_PATH = "/robot/send"
FEISHU_PATH = "/open-apis/bot/v2/hook/"
WECOM_MAX_BYTES = 4096


@dataclass
class Received:
    """One accepted message: which robot (kind, key) and the JSON body as sent."""

    kind: str
    key: str
    body: dict[str, Any]


@dataclass
class Robots:
    """The robots this receiver knows (key or token -> secret, None for 企业微信) and what they received."""

    base: str = ""
    secrets: dict[str, str | None] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    requests: int = 0
    script: dict[str, list[int]] = field(default_factory=dict)  # key -> statuses to answer first, in order
    always: dict[str, int] = field(default_factory=dict)  # key -> status answered every time
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wecom_url(self, key: str) -> str:
        return f"{self.base}{WECOM_PATH}?key={key}"

    def dingtalk_url(self, token: str) -> str:
        return f"{self.base}{DINGTALK_PATH}?access_token={token}"

    def feishu_url(self, token: str) -> str:
        return f"{self.base}{FEISHU_PATH}{token}"

    def bodies(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r.body for r in self.received if r.kind == kind]


def _hmac_b64(key: bytes, msg: bytes) -> str:
    return base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()


def _fresh(stamp: float) -> bool:
    return abs(time.time() - stamp) < 3600  # both platforms refuse a timestamp more than an hour away


def check_wecom(body: dict[str, Any]) -> dict[str, Any]:
    content = body.get("markdown", {}).get("content") if body.get("msgtype") == "markdown" else None
    if not isinstance(content, str) or not content or len(content.encode()) > WECOM_MAX_BYTES:
        return {"errcode": 40008, "errmsg": "invalid message type or markdown.content"}
    return {"errcode": 0, "errmsg": "ok"}


def check_dingtalk(secret: str | None, query: dict[str, list[str]], body: dict[str, Any]) -> dict[str, Any]:
    if secret is not None:
        stamp, sign = query.get("timestamp", [""])[0], query.get("sign", [""])[0]
        # parse_qs undid the URL encoding once: the sign is the plain base64 of HmacSHA256(secret, "timestamp\nsecret")
        if (
            not stamp.isdigit()
            or not _fresh(int(stamp) / 1000)
            or sign != _hmac_b64(secret.encode(), f"{stamp}\n{secret}".encode())
        ):
            return {"errcode": 310000, "errmsg": "sign not match"}
    markdown = body.get("markdown", {})
    if body.get("msgtype") != "markdown" or not markdown.get("title") or not markdown.get("text"):
        return {"errcode": 40035, "errmsg": "缺少参数 markdown"}
    return {"errcode": 0, "errmsg": "ok"}


def check_feishu(secret: str | None, body: dict[str, Any]) -> dict[str, Any]:
    if secret is not None:
        stamp, sign = str(body.get("timestamp", "")), body.get("sign")
        if not stamp.isdigit() or not _fresh(int(stamp)) or sign != _hmac_b64(f"{stamp}\n{secret}".encode(), b""):
            return {
                "code": 19021,
                "msg": "sign match fail or timestamp is not within one hour from current time",
                "data": {},
            }
    card = body.get("card", {})
    elements = card.get("elements") or [{}]
    if (
        body.get("msg_type") != "interactive"
        or not card.get("header", {}).get("title", {}).get("content")
        or elements[0].get("tag") != "markdown"
    ):
        return {"code": 9499, "msg": "Bad Request", "data": {}}
    return {"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": {}, "msg": "success"}


def _route(path: str, query: dict[str, list[str]]) -> tuple[str, str]:
    if path == WECOM_PATH:
        return "wecom", query.get("key", [""])[0]
    if path == DINGTALK_PATH:
        return "dingtalk", query.get("access_token", [""])[0]
    if path.startswith(FEISHU_PATH):
        return "feishu", unquote(path[len(FEISHU_PATH) :])
    return "", ""


def _unknown(kind: str) -> dict[str, Any]:
    if kind == "feishu":
        return {"code": 19001, "msg": "param invalid: incoming webhook access token invalid", "data": {}}
    return {"errcode": 93000 if kind == "wecom" else 300001, "errmsg": "invalid webhook url / token is not exist"}


def _answer(
    robots: Robots, kind: str, key: str, query: dict[str, list[str]], body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    with robots.lock:
        robots.requests += 1
        if key in robots.always:
            return robots.always[key], {"error": "server error"}
        queued = robots.script.get(key)
        if queued:
            return queued.pop(0), {"error": "server error"}
        if key not in robots.secrets:
            return 200, _unknown(kind)
        secret = robots.secrets[key]
    answer = (
        check_wecom(body)
        if kind == "wecom"
        else check_dingtalk(secret, query, body)
        if kind == "dingtalk"
        else check_feishu(secret, body)
    )
    if answer.get("errcode", answer.get("code")) == 0:
        with robots.lock:
            robots.received.append(Received(kind, key, body))
    return 200, answer


def _handler(robots: Robots) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            kind, key = _route(parts.path, query)
            try:
                body = json.loads(raw.decode("utf-8"))
            except ValueError:
                body = None
            if not kind or not isinstance(body, dict) or "application/json" not in self.headers.get("Content-Type", ""):
                status, answer = 400, {"errcode": 40001, "errmsg": "bad request"}
            else:
                status, answer = _answer(robots, kind, key, query, body)
            data = json.dumps(answer, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
            pass  # the request line holds the robots' keys: tests check no secret reaches any output

    return Handler


@contextmanager
def chat_robots(secrets: dict[str, str | None]) -> Iterator[Robots]:
    """A receiver on 127.0.0.1 (a free port) for these robots: key or token -> signing secret (None: unsigned)."""
    robots = Robots(secrets=dict(secrets))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(robots))
    robots.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )  # a quick shutdown
    thread.start()
    try:
        yield robots
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
