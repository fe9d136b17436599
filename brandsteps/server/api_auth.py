"""The Prefect API's basic auth: a temporary server's own login, a refused login explained, the secret never shown."""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "AUTH_VARIABLES",
    "api_refusal",
    "configured_auth_strings",
    "new_auth_string",
    "redact_auth",
    "secret_forms",
    "without_credentials",
]

# the client's and the server's: a process may hold either (a server's host often runs the CLI too)
AUTH_VARIABLES = ("PREFECT_API_AUTH_STRING", "PREFECT_SERVER_API_AUTH_STRING")
TEMPORARY_USER = "brandsteps"
HIDDEN = "***"
UNAUTHORIZED = 401


def new_auth_string() -> str:
    """A fresh user:password for a server that only this command talks to."""
    return f"{TEMPORARY_USER}:{secrets.token_urlsafe(24)}"


def secret_forms(auth_string: str) -> list[str]:
    """How an auth string could appear in text: as written, as Basic auth's base64, its password; longest first."""
    password = auth_string.partition(":")[2]
    forms = {auth_string, base64.b64encode(auth_string.encode("utf-8")).decode("ascii"), password}
    return sorted((form for form in forms if form), key=len, reverse=True)


def configured_auth_strings() -> list[str]:
    """The auth strings this process could send or serve: from the environment and Prefect's settings (profiles)."""
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    found = [os.environ.get(name, "") for name in AUTH_VARIABLES]
    secrets_set = (settings.api.auth_string, settings.server.api.auth_string)
    found += [secret.get_secret_value() for secret in secrets_set if secret is not None]
    return [auth for auth in dict.fromkeys(found) if auth]


def redact_auth(text: str, auth_strings: Iterable[str] | None = None) -> str:
    """The text with every form of these auth strings (default: the configured ones) replaced by ***."""
    for auth in configured_auth_strings() if auth_strings is None else auth_strings:
        for form in secret_forms(auth):
            text = text.replace(form, HIDDEN)
    return text


def without_credentials(url: str) -> str:
    """The URL as it may be shown: a user:password@ in it becomes ***@."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=f"{HIDDEN}@{parts.netloc.rpartition('@')[2]}"))


def api_refusal(exc: BaseException, auth_given: bool | None = None) -> str | None:
    """What to set when a Prefect server refused this command's login (HTTP 401); None for any other error.

    auth_given: whether this process sends an auth string (default: whether PREFECT_API_AUTH_STRING is set).
    """
    response = getattr(exc, "response", None)
    if getattr(response, "status_code", None) != UNAUTHORIZED:
        return None
    url = urlsplit(str(getattr(response, "url", "")))
    server = without_credentials(urlunsplit((url.scheme, url.netloc, "", "", "")))
    if auth_given is None:
        from prefect.settings import PREFECT_API_AUTH_STRING

        auth_given = bool(PREFECT_API_AUTH_STRING.value())
    what = "refused PREFECT_API_AUTH_STRING" if auth_given else "wants a login and PREFECT_API_AUTH_STRING is not set"
    return (
        f"the Prefect server at {server} {what} (401 Unauthorized): "
        "set it to the user:password the server was started with (its PREFECT_SERVER_API_AUTH_STRING)"
    )
