"""The Prefect API's login as brandsteps handles it: secret forms, redaction, URLs shown, a refused login explained."""

from __future__ import annotations

import httpx
import pytest

from brandsteps.server.api_auth import (
    api_refusal,
    configured_auth_strings,
    new_auth_string,
    redact_auth,
    secret_forms,
    without_credentials,
)


def test_a_new_auth_string_is_fresh_and_long() -> None:
    first, second = new_auth_string(), new_auth_string()
    user, _, password = first.partition(":")
    # 24 random bytes as URL-safe base64: 32 characters nobody guesses; two servers never share one
    assert (user, len(password), first != second) == ("brandsteps", 32, True)


@pytest.mark.parametrize(
    ("auth", "forms"),
    [
        # admin:pass in base64 is YWRtaW46cGFzcw==, the value of the Basic header and of the UI's stored login
        pytest.param("admin:pass", ["YWRtaW46cGFzcw==", "admin:pass", "pass"], id="user-and-password"),
        pytest.param("token", ["dG9rZW4=", "token"], id="no-colon"),  # no password part to hide on its own
        pytest.param("admin:", ["YWRtaW46", "admin:"], id="empty-password"),  # an empty password is no text to hide
    ],
)
def test_secret_forms(auth: str, forms: list[str]) -> None:
    assert secret_forms(auth) == forms


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Authorization: Basic YWRtaW46cGFzcw==", "Authorization: Basic ***", id="header"),
        pytest.param(
            "login admin:pass refused", "login *** refused", id="whole-string"
        ),  # the longest form first: one ***
        pytest.param("secret: pass", "secret: ***", id="password-alone"),
        # wherever it occurs, even inside a word: a garbled message rather than a leak
        pytest.param("passport", "***port", id="inside-a-word"),
        pytest.param("nothing secret", "nothing secret", id="untouched"),
    ],
)
def test_redact_auth(text: str, expected: str) -> None:
    assert redact_auth(text, ["admin:pass"]) == expected


def test_redact_auth_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_API_AUTH_STRING", "ops:c1ient-secret")
    monkeypatch.setenv("PREFECT_SERVER_API_AUTH_STRING", "ops:serv3r-secret")
    assert {"ops:c1ient-secret", "ops:serv3r-secret"} <= set(configured_auth_strings())
    assert (
        redact_auth("c1ient-secret and serv3r-secret") == "*** and ***"
    )  # both variables, as set when the command runs


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        pytest.param(
            "http://admin:pass@prefect.example.com:4200/api",
            "http://***@prefect.example.com:4200/api",
            id="user-and-password",
        ),
        pytest.param("https://token@prefect.example.com/api", "https://***@prefect.example.com/api", id="user-only"),
        pytest.param("http://127.0.0.1:4200/api", "http://127.0.0.1:4200/api", id="no-credentials"),
    ],
)
def test_without_credentials(url: str, shown: str) -> None:
    assert without_credentials(url) == shown


def _status_error(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request(
        "POST", "http://127.0.0.1:4200/api/flow_runs/filter", headers={"Authorization": "Basic YWRtaW46cGFzcw=="}
    )
    return httpx.HTTPStatusError(
        f"Client error '{status}'", request=request, response=httpx.Response(status, request=request)
    )


SET_IT = "set it to the user:password the server was started with (its PREFECT_SERVER_API_AUTH_STRING)"


@pytest.mark.parametrize(
    ("error", "auth_given", "message"),
    [
        pytest.param(
            _status_error(401),
            False,
            "the Prefect server at http://127.0.0.1:4200 wants a login and PREFECT_API_AUTH_STRING is not set "
            f"(401 Unauthorized): {SET_IT}",
            id="no-login",
        ),
        pytest.param(
            _status_error(401),
            True,
            f"the Prefect server at http://127.0.0.1:4200 refused PREFECT_API_AUTH_STRING (401 Unauthorized): {SET_IT}",
            id="wrong-login",
        ),
        pytest.param(_status_error(404), True, None, id="not-a-login-problem"),  # other errors keep their own message
        pytest.param(RuntimeError("boom"), True, None, id="not-http"),
    ],
)
def test_api_refusal(error: BaseException, auth_given: bool, message: str | None) -> None:
    assert api_refusal(error, auth_given) == message
