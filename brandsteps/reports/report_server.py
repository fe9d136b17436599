"""A read-only HTTP server for the reports folder, so a browser on another machine can open what the cycles draw."""

from __future__ import annotations

import errno
import logging
import mimetypes
import os
import shutil
import socket
import threading
from dataclasses import dataclass
from datetime import date
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

DEFAULT_REPORT_HOST = "127.0.0.1"
DEFAULT_REPORT_PORT = 4280
REPORT_DIR_ENV = "BRANDSTEPS_REPORT_DIR"
REPORT_URL_ENV = "BRANDSTEPS_REPORT_URL"
ALLOW = "GET, HEAD"
# The reports are our own static pages: nothing runs in them, and nothing may be loaded from elsewhere.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # a report rewritten by a rerun shows at once
}
log = logging.getLogger(__name__)


class PortInUse(OSError):
    """The report port is taken (another `brandsteps serve`, or something else)."""


def resolve_request(root: Path, raw_path: str) -> tuple[HTTPStatus, Path | None]:
    """The file a request path names under root, or the status refusing it.

    Refused with 403: any `.`/`..` segment (also percent-encoded), a hidden segment, a backslash or
    NUL, and a path whose real location (symlinks followed) is outside root. A folder means its
    index.html; there are no listings. root must be resolved.
    """
    path = unquote(urlsplit(raw_path).path, errors="strict")
    segments = [s for s in path.split("/") if s]
    if any(s.startswith(".") or "\\" in s or "\0" in s for s in segments):
        return HTTPStatus.FORBIDDEN, None
    target = root.joinpath(*segments)
    try:
        real = target.resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError):
        return HTTPStatus.NOT_FOUND, None
    except (OSError, RuntimeError):  # symlink loops, names too long
        return HTTPStatus.FORBIDDEN, None
    if not real.is_relative_to(root):
        return HTTPStatus.FORBIDDEN, None
    if real.is_dir():
        real = real / "index.html"
    if not real.is_file():
        return HTTPStatus.NOT_FOUND, None
    return HTTPStatus.OK, real


class ReportRequestHandler(BaseHTTPRequestHandler):
    """GET and HEAD of files under the server's root; every other method is refused with 405."""

    server: ReportHTTPServer
    server_version = "brandsteps-reports"
    sys_version = ""  # no Python version in the Server header

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._send(body=True)

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
        self._send(body=False)

    def _refuse_method(self) -> None:
        self._status(HTTPStatus.METHOD_NOT_ALLOWED, body=True, extra={"Allow": ALLOW})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _refuse_method

    def _status(self, status: HTTPStatus, body: bool, extra: dict[str, str] | None = None) -> None:
        text = f"{status.value} {status.phrase}\n".encode()
        self.send_response(status)
        for key, value in {
            **SECURITY_HEADERS,
            **(extra or {}),
            "Content-Type": "text/plain; charset=utf-8",
            "Content-Length": str(len(text)),
        }.items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(text)

    def _send(self, body: bool) -> None:
        try:
            status, path = resolve_request(self.server.root, self.path)
        except UnicodeDecodeError:
            status, path = HTTPStatus.BAD_REQUEST, None
        if path is None:
            self._status(status, body)
            return
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if kind.startswith("text/"):
            kind += "; charset=utf-8"  # the report pages are written as UTF-8 (Chinese brand names)
        try:
            handle = path.open("rb")
        except OSError:
            self._status(HTTPStatus.NOT_FOUND, body)
            return
        with handle:
            self.send_response(HTTPStatus.OK)
            for key, value in {
                **SECURITY_HEADERS,
                "Content-Type": kind,
                "Content-Length": str(os.fstat(handle.fileno()).st_size),
            }.items():
                self.send_header(key, value)
            self.end_headers()
            if body:
                shutil.copyfileobj(handle, self.wfile)

    def log_message(self, format: str, *args: object) -> None:  # http.server's signature
        log.debug("%s %s", self.address_string(), format % args)


class ReportHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its root folder; handler threads never keep the process alive."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], root: Path) -> None:
        self.root = root.resolve()
        super().__init__(address, ReportRequestHandler)


class ReportHTTPServer6(ReportHTTPServer):
    address_family = socket.AF_INET6


@dataclass
class ReportServer:
    """A running report server: where it listens and how to stop it."""

    httpd: ReportHTTPServer
    thread: threading.Thread
    host: str
    port: int

    @property
    def url(self) -> str:
        """The server's own base URL, for a browser on this machine (wildcard addresses become the host name)."""
        return base_url(self.host, self.port)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def public_host() -> str:
    """How other machines can name this one.

    Its fully qualified name, else the address it reaches the network from, else its host name.
    """
    name = socket.getfqdn()
    if "." in name and not name.startswith("localhost"):
        return name
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # UDP connect only picks the outgoing interface: nothing is sent
            address = str(probe.getsockname()[0])
        if not address.startswith("127."):
            return address
    except OSError:  # no route: an offline machine
        pass
    return socket.gethostname()


def base_url(host: str, port: int) -> str:
    """http://host:port; a wildcard bind address becomes this machine's public name, so the link works elsewhere."""
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - comparing, not binding
        host = public_host()
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"http://{host}:{port}"


def report_link(base_url: str, as_of: date, name: str = "index.html") -> str:
    """Where the served report of a day (or one of its files) is: <base_url>/<as_of>/<name>."""
    return f"{base_url.rstrip('/')}/{as_of.isoformat()}/{quote(name)}"


def start_report_server(root: Path, host: str = DEFAULT_REPORT_HOST, port: int = DEFAULT_REPORT_PORT) -> ReportServer:
    """Serve root read-only over HTTP from a daemon thread (port 0: any free port); PortInUse if the port is taken."""
    root.mkdir(parents=True, exist_ok=True)
    server_class = ReportHTTPServer6 if ":" in host else ReportHTTPServer
    try:
        httpd = server_class((host, port), root)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(exc.errno, f"port {port} on {host} is in use") from None
        raise
    thread = threading.Thread(target=httpd.serve_forever, name="brandsteps-report-server", daemon=True)
    thread.start()
    return ReportServer(httpd, thread, host, int(httpd.server_address[1]))
