"""Who may approve: approvers.yaml's validation, the TOTP check of an answer, and `approve`/`approvers enroll` on the command line."""

from __future__ import annotations

import io
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pyotp
import pytest
import segno
import yaml

from brandsteps.approvals.approvers import (
    Accepted,
    ApproversConfig,
    Refusal,
    check_approval,
    code_step,
    load_approvers,
    may_be_owner,
    suggested_env_name,
)
from brandsteps.cli import main, prefect_server
from brandsteps.config import Brand, ConfigError, load_portfolio
from tests.approval_helpers import (
    APPROVERS_YAML,
    SECRETS,
    UNSET_ENV,
    awaiting_portfolio,
    code_now,
    set_secrets,
    wrong_code,
)
from tests.conftest import REPO, write_configs

# ---------------------------------------------------------------- approvers.yaml

VALID_ENTRY = "  - {name: 赵磊 Zhao Lei, totp_secret_env: BRANDSTEPS_TOTP_ZHAO_LEI}\n"


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        pytest.param(
            "approvers:\n" + VALID_ENTRY + "  - {name: 王敏 Wang Min}\n",
            ["configs/approvers.yaml: approvers[1].totp_secret_env: is required"],
            id="secret-env-missing",  # the issue's own example: file, field path, reason
        ),
        pytest.param(
            "approvers:\n  - {name: 王敏, stages: [public_trafic], totp_secret_env: W}\n",
            [
                "configs/approvers.yaml: approvers[0].stages[0]: must be one of 'affiliate_trial', 'public_traffic', 'self_broadcast', "
                "'private_repurchase' or 'channel_exclusive' (got 'public_trafic')"
            ],
            id="stage-typo",
        ),
        pytest.param(
            "approvers:\n  - {name: 王敏, brands: [Lanting Apparel], totp_secret_env: W}\n",
            [
                "configs/approvers.yaml: approvers[0].brands: 'Lanting Apparel' is not a brand id (lowercase letters, digits and dashes)"
            ],
            id="brand-not-an-id",
        ),
        pytest.param(
            "approvers:\n  - {name: 王敏, brands: [tea, nope], totp_secret_env: W}\n",
            ["configs/approvers.yaml: approvers[0].brands[1]: unknown brand 'nope' (no configs/brands/nope.yaml)"],
            id="brand-without-a-file",  # a typo would leave a brand nobody may approve
        ),
        pytest.param(
            "approvers:\n" + VALID_ENTRY + "  - {name: '赵磊  zhao lei', totp_secret_env: OTHER}\n",
            [
                "configs/approvers.yaml: approvers: [1] lists '赵磊  zhao lei' again (also [0]): one entry per person, with all their stages and brands"
            ],
            id="one-person-twice",  # case and spaces do not make a second person
        ),
        pytest.param(
            "approvers:\n  - {name: 王敏, totp_secret_env: JBSWY3DPEHPK3PXPJBSWY3DP}\n",
            [
                "configs/approvers.yaml: approvers[0].totp_secret_env: looks like a TOTP secret itself: put the secret in an environment "
                "variable and name the variable here"
            ],
            id="secret-pasted-not-echoed",  # the message never repeats the value
        ),
        pytest.param(
            "approvers:\n  - {name: 王敏, totp_secret_env: 'otp-secret!'}\n",
            [
                "configs/approvers.yaml: approvers[0].totp_secret_env: must be the name of an environment variable, like BRANDSTEPS_TOTP_WANG_MIN"
            ],
            id="not-an-env-name",
        ),
        pytest.param(
            "approvers:\n" + VALID_ENTRY + "escalation: ['@ops']\n",
            ["configs/approvers.yaml: escalation: has no effect without escalate_after_hours"],
            id="escalation-without-hours",
        ),
        pytest.param(
            "approvers:\n" + VALID_ENTRY + "escalate_after_hours: 0\n",
            ["configs/approvers.yaml: escalate_after_hours: must be > 0.0"],
            id="escalation-at-zero-hours",
        ),
        pytest.param("approvers: []\n", ["configs/approvers.yaml: approvers: must not be empty"], id="nobody"),
        pytest.param(
            "approvers:\n  - {name: 王敏, totp_secret_env: W, totp_secret: abc}\n",
            ["configs/approvers.yaml: approvers[0].totp_secret: unknown key"],
            id="unknown-key",  # a secret typed into the file under another key is refused, not kept
        ),
        pytest.param(
            "# nobody yet\n",
            ["configs/approvers.yaml: the file has no settings (only comments or blank lines)"],
            id="only-comments",
        ),
    ],
)
def test_approvers_yaml_problems_name_file_field_and_reason(tmp_path: Path, text: str, problems: list[str]) -> None:
    configs = write_configs(tmp_path, {"tea": {}})
    (configs / "approvers.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_approvers(configs, ["tea"])
    assert caught.value.problems == problems


def test_without_approvers_yaml_there_is_no_list(tmp_path: Path) -> None:
    # None, not an empty list: "anyone may approve" as before, which validate and serve warn about
    assert load_approvers(write_configs(tmp_path, {"tea": {}}), ["tea"]) is None


def test_the_shipped_approvers_yaml_is_valid_for_the_shipped_brands() -> None:
    portfolio = load_portfolio(REPO / "configs", apply_env=False, cache=False)
    approvers = load_approvers(REPO / "configs", list(portfolio.brands))
    assert approvers is not None
    # two approvers at least for every stage a shipped brand or the demo gates (self_broadcast, public_traffic)
    yunqi = portfolio.brands["yunqi-beauty"]
    assert {stage: len(approvers.answering(yunqi, stage)) >= 2 for stage in ("public_traffic", "self_broadcast")} == {
        "public_traffic": True,
        "self_broadcast": True,
    }


def test_an_owner_is_never_among_the_approvers_asked() -> None:
    # 王敏 Wang Min may answer every stage of every brand but owns tea; 孙丽 answers public_traffic only, 周婷 silk only
    assert [a.name for a in CONFIG.answering(TEA, "affiliate_trial")] == ["赵磊 Zhao Lei"]


# ---------------------------------------------------------------- checking an answer

NOW = datetime(2026, 3, 4, 10, 0, 15, tzinfo=UTC)  # 15 s into its 30-second step
ZHAO = SECRETS["BRANDSTEPS_TOTP_TEST_ZHAO"]
STEP = pyotp.TOTP(ZHAO).timecode(NOW)
TEA = Brand(
    brand_id="tea", name="山野茶社", tier="small", category="food", start_date="2026-01-01", owner="王敏 Wang Min"
)
CONFIG = ApproversConfig.model_validate(yaml.safe_load(APPROVERS_YAML))


def _code(offset: int = 0, secret: str = ZHAO) -> str:
    return pyotp.TOTP(secret).at(NOW, counter_offset=offset)


@pytest.mark.parametrize(
    ("by", "code", "secrets", "last_step", "expected"),
    [
        pytest.param("赵磊 Zhao Lei", _code(), SECRETS, None, Accepted("赵磊 Zhao Lei", STEP), id="current-code"),
        pytest.param(
            "赵磊 Zhao Lei",
            _code(-1),
            SECRETS,
            None,
            Accepted("赵磊 Zhao Lei", STEP - 1),
            id="previous-step-clock-drift",
        ),
        pytest.param(
            "赵磊 Zhao Lei", _code(1), SECRETS, None, Accepted("赵磊 Zhao Lei", STEP + 1), id="next-step-clock-drift"
        ),
        pytest.param(
            "赵磊  ZHAO lei",
            " ".join([_code()[:3], _code()[3:]]),
            SECRETS,
            None,
            Accepted("赵磊 Zhao Lei", STEP),
            id="name-as-typed-code-with-a-space",
        ),  # recorded under the listed name
        pytest.param(
            "王敏 Wang Min",
            _code(secret=SECRETS["BRANDSTEPS_TOTP_TEST_WANG"]),
            SECRETS,
            None,
            Refusal("owner", "a brand's owner may not approve it (four eyes)"),
            id="owner-with-a-valid-code",
        ),
        pytest.param(
            "王敏",
            "123456",
            SECRETS,
            None,
            Refusal("owner", "a brand's owner may not approve it (four eyes)"),
            id="owner-by-part-of-the-name",
        ),  # owner: 王敏 Wang Min
        pytest.param(
            "Li Wei",
            _code(),
            SECRETS,
            None,
            Refusal("unknown", "Li Wei is not an approver in approvers.yaml"),
            id="not-listed",
        ),
        pytest.param(
            "孙丽 Sun Li",
            _code(secret=SECRETS["BRANDSTEPS_TOTP_TEST_SUN"]),
            SECRETS,
            None,
            Refusal("not_allowed", "孙丽 Sun Li may not approve tea in affiliate_trial"),
            id="other-stage",
        ),
        pytest.param(
            "周婷 Zhou Ting",
            "123456",
            SECRETS,
            None,
            Refusal("not_allowed", "周婷 Zhou Ting may not approve tea in affiliate_trial"),
            id="other-brand",
        ),
        pytest.param(
            "赵磊 Zhao Lei",
            None,
            SECRETS,
            None,
            Refusal("no_code", "a code is required: the current 6-digit code of 赵磊 Zhao Lei's authenticator app"),
            id="no-code",
        ),
        pytest.param(
            "赵磊 Zhao Lei",
            _code(),
            {},
            None,
            Refusal("no_secret", "no secret in BRANDSTEPS_TOTP_TEST_ZHAO for 赵磊 Zhao Lei"),
            id="secret-not-set",
        ),
        pytest.param(
            "赵磊 Zhao Lei",
            _code(),
            {"BRANDSTEPS_TOTP_TEST_ZHAO": "not base32!"},
            None,
            Refusal(
                "bad_secret", "the secret in BRANDSTEPS_TOTP_TEST_ZHAO for 赵磊 Zhao Lei is not a base32 TOTP secret"
            ),
            id="secret-not-base32",
        ),  # named by its variable, never shown
        pytest.param(
            "赵磊 Zhao Lei",
            _code(-2),
            SECRETS,
            None,
            Refusal("wrong_code", "wrong or expired code"),
            id="expired-a-minute-ago",
        ),
        pytest.param(
            "赵磊 Zhao Lei", "12345", SECRETS, None, Refusal("wrong_code", "wrong or expired code"), id="five-digits"
        ),
        pytest.param(
            "赵磊 Zhao Lei",
            _code(),
            SECRETS,
            STEP,
            Refusal("replayed", "this code was already used by 赵磊 Zhao Lei: wait for the next one"),
            id="code-used-before",
        ),
        pytest.param(
            "赵磊 Zhao Lei",
            _code(-1),
            SECRETS,
            STEP,
            Refusal("replayed", "this code was already used by 赵磊 Zhao Lei: wait for the next one"),
            id="older-than-a-used-code",
        ),
        pytest.param(
            "赵磊 Zhao Lei",
            _code(1),
            SECRETS,
            STEP,
            Accepted("赵磊 Zhao Lei", STEP + 1),
            id="the-next-code-after-a-used-one",
        ),
    ],
)
def test_check_approval(
    by: str, code: str | None, secrets: dict[str, str], last_step: int | None, expected: Refusal | Accepted
) -> None:
    assert (
        check_approval(CONFIG, TEA, "affiliate_trial", by, code, NOW, secrets.get, lambda _name: last_step) == expected
    )


def test_without_approvers_yaml_any_name_is_accepted_unproved() -> None:
    # today's behaviour: no list, no code, no four-eyes check (the owner may approve), step None
    assert check_approval(None, TEA, "affiliate_trial", "王敏 Wang Min", None, NOW, {}.get) == Accepted(
        "王敏 Wang Min", None
    )


@pytest.mark.parametrize(
    ("name", "owner", "same"),
    [
        pytest.param("王敏 Wang Min", "王敏 Wang Min", True, id="same"),
        pytest.param("wang  MIN", "王敏 Wang Min", True, id="part-in-another-case"),
        pytest.param("王敏", "王敏 Wang Min", True, id="chinese-part"),
        pytest.param("Wang Fang", "王敏 Wang Min", False, id="shares-a-surname-only"),
        pytest.param("王敏敏", "王敏", False, id="a-longer-name"),
    ],
)
def test_may_be_owner(name: str, owner: str, same: bool) -> None:
    assert may_be_owner(name, owner) is same


def test_code_step_of_a_malformed_code_is_none() -> None:
    assert [code_step(ZHAO, code, NOW) for code in ("", "abcdef", "1234567", _code())] == [None, None, None, STEP]


@pytest.mark.parametrize(
    ("name", "env"),
    [
        pytest.param("Wang Min", "BRANDSTEPS_TOTP_WANG_MIN", id="ascii"),
        pytest.param("王敏 Wang Min", "BRANDSTEPS_TOTP_WANG_MIN", id="chinese-and-pinyin"),
        pytest.param("王敏", "BRANDSTEPS_TOTP_NAME", id="chinese-only-a-placeholder"),
        pytest.param("José Núñez", "BRANDSTEPS_TOTP_JOSE_NUNEZ", id="accents-dropped"),
    ],
)
def test_suggested_env_name(name: str, env: str) -> None:
    assert suggested_env_name(name) == env


# ---------------------------------------------------------------- brandsteps approve


def _ledger_rows(configs: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(configs.parent / "data" / "ledger.sqlite") as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
def awaiting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    set_secrets(monkeypatch)
    monkeypatch.setattr(
        prefect_server, "local_server_mode", lambda: True
    )  # no Prefect server: secrets from the environment, no forms to close
    return awaiting_portfolio(tmp_path)


REFUSALS = [
    pytest.param(
        "tea",
        "王敏 Wang Min",
        lambda: code_now("BRANDSTEPS_TOTP_TEST_WANG"),
        "owner",
        "a brand's owner may not approve it (four eyes)",
        id="owner",
    ),
    pytest.param(
        "tea", "Li Wei", lambda: "123456", "unknown", "Li Wei is not an approver in approvers.yaml", id="not-listed"
    ),
    pytest.param(
        "tea",
        "孙丽 Sun Li",
        lambda: code_now("BRANDSTEPS_TOTP_TEST_SUN"),
        "not_allowed",
        "孙丽 Sun Li may not approve tea in affiliate_trial",
        id="other-stage",
    ),
    pytest.param(
        "tea",
        "赵磊 Zhao Lei",
        lambda: None,
        "no_code",
        "a code is required: the current 6-digit code of 赵磊 Zhao Lei's authenticator app",
        id="no-code",
    ),
    pytest.param(
        "silk",
        "周婷 Zhou Ting",
        lambda: "123456",
        "no_secret",
        f"no secret in {UNSET_ENV} for 周婷 Zhou Ting",
        id="no-secret",
    ),
    pytest.param(
        "tea",
        "赵磊 Zhao Lei",
        lambda: wrong_code("BRANDSTEPS_TOTP_TEST_ZHAO"),
        "wrong_code",
        "wrong or expired code",
        id="wrong-code",
    ),
]


@pytest.mark.parametrize(("brand", "by", "code", "kind", "reason"), REFUSALS)
def test_a_refused_approval_exits_2_records_why_and_leaves_the_brand(
    awaiting: Path, capsys: pytest.CaptureFixture[str], brand: str, by: str, code: object, kind: str, reason: str
) -> None:
    given = code()  # type: ignore[operator]
    args = ["approve", brand, "--by", by, "--reason", "numbers hold", "--configs", str(awaiting)] + (
        ["--code", given] if given else []
    )
    assert main(args) == 2
    assert capsys.readouterr().err == f"brandsteps: refused: {reason}; {brand} is unchanged\n"
    # the brand still waits in its stage; the attempt says who, what, why and through which door
    assert _ledger_rows(awaiting, f"SELECT stage, awaiting FROM brand_state WHERE brand_id = '{brand}'") == [
        ("affiliate_trial", 1)
    ]
    assert _ledger_rows(
        awaiting,
        "SELECT brand_id, stage, outcome, answer, actor, reason, refusal, channel, code_step FROM approval_attempts",
    ) == [(brand, "affiliate_trial", "refused", "approve", by, reason, kind, "cli", None)]
    assert _ledger_rows(awaiting, "SELECT count(*) FROM stage_changes WHERE cause != 'decision'") == [(0,)]


def test_an_accepted_code_approves_once_and_is_spent(awaiting: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = code_now("BRANDSTEPS_TOTP_TEST_ZHAO")
    assert (
        main(
            [
                "approve",
                "tea",
                "--by",
                "赵磊 zhao lei",
                "--reason",
                "numbers hold",
                "--code",
                code,
                "--configs",
                str(awaiting),
            ]
        )
        == 0
    )
    assert (
        capsys.readouterr().out == "tea: approved by 赵磊 Zhao Lei: affiliate_trial -> public_traffic\n"
    )  # the listed name is recorded
    # the same code again, for the other brand: a replay proves nothing
    assert (
        main(
            [
                "approve",
                "silk",
                "--by",
                "赵磊 Zhao Lei",
                "--reason",
                "numbers hold",
                "--code",
                code,
                "--configs",
                str(awaiting),
            ]
        )
        == 2
    )
    assert (
        capsys.readouterr().err
        == "brandsteps: refused: this code was already used by 赵磊 Zhao Lei: wait for the next one; silk is unchanged\n"
    )
    attempts = _ledger_rows(
        awaiting,
        "SELECT brand_id, outcome, actor, refusal, channel, code_step IS NOT NULL FROM approval_attempts ORDER BY id",
    )
    assert attempts == [
        ("tea", "approved", "赵磊 Zhao Lei", None, "cli", 1),
        ("silk", "refused", "赵磊 Zhao Lei", "replayed", "cli", 0),
    ]
    assert _ledger_rows(
        awaiting, "SELECT brand_id, cause, actor, to_stage FROM stage_changes WHERE cause != 'decision'"
    ) == [("tea", "approval", "赵磊 Zhao Lei", "public_traffic")]


def test_a_malformed_code_is_a_usage_error(awaiting: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "approve",
                "tea",
                "--by",
                "赵磊 Zhao Lei",
                "--reason",
                "numbers hold",
                "--code",
                "12ab",
                "--configs",
                str(awaiting),
            ]
        )
        == 2
    )
    assert capsys.readouterr().err == "brandsteps: --code must be the 6 digits your authenticator app shows now\n"
    assert _ledger_rows(awaiting, "SELECT count(*) FROM approval_attempts") == [
        (0,)
    ]  # no answer was given: nothing to record


def test_without_approvers_yaml_a_code_is_not_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(prefect_server, "local_server_mode", lambda: True)
    configs = awaiting_portfolio(tmp_path, approvers_yaml=None)
    # the owner may approve, as before the file existed; a code given is said to be unchecked
    assert (
        main(
            [
                "approve",
                "tea",
                "--by",
                "王敏 Wang Min",
                "--reason",
                "numbers hold",
                "--code",
                "123456",
                "--configs",
                str(configs),
            ]
        )
        == 0
    )
    out = capsys.readouterr()
    assert (out.out, out.err) == (
        "tea: approved by 王敏 Wang Min: affiliate_trial -> public_traffic\n",
        f"warning: no {configs}/approvers.yaml: --code is not checked (any name may approve)\n",
    )


# ---------------------------------------------------------------- validate, serve, enroll


def test_validate_reports_approvers_problems_with_the_others(
    awaiting: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "--configs", str(awaiting)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"approvers: 4 in {awaiting}/approvers.yaml"
    (awaiting / "approvers.yaml").write_text("approvers:\n  - {name: 王敏, brands: [nope]}\n", encoding="utf-8")
    (awaiting / "brands" / "silk.yaml").write_text("brand_id: silk\n", encoding="utf-8")
    assert main(["validate", "--configs", str(awaiting)]) == 2
    problems = capsys.readouterr().err.splitlines()
    # the brand file's problems and approvers.yaml's in one report (brands unknown while brands fail to load are not checked)
    assert [p for p in problems if "approvers.yaml" in p] == [
        "  configs/approvers.yaml: approvers[0].totp_secret_env: is required"
    ]
    assert "  configs/brands/silk.yaml: name: is required" in problems


@pytest.mark.parametrize("command", [pytest.param(["validate"], id="validate"), pytest.param(["serve"], id="serve")])
def test_validate_and_serve_warn_without_approvers_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    monkeypatch.setattr(
        prefect_server, "local_server_mode", lambda: True
    )  # serve then stops at "needs a running Prefect server", after the warning
    configs = write_configs(tmp_path, {"tea": {}})
    main([*command, "--configs", str(configs)])
    warning = f"warning: no {configs}/approvers.yaml: any name may approve a brand awaiting approval (list approvers to require their codes)"
    assert warning in capsys.readouterr().err.splitlines()


def _enroll(configs: Path, name: str, capsys: pytest.CaptureFixture[str]) -> tuple[str, list[str]]:
    assert main(["approvers", "enroll", name, "--configs", str(configs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    uri = next(line for line in lines if line.startswith("otpauth://"))
    return uri, lines


def test_enroll_prints_a_working_secret_as_uri_and_qr_code(awaiting: Path, capsys: pytest.CaptureFixture[str]) -> None:
    uri, lines = _enroll(awaiting, "赵磊 Zhao Lei", capsys)
    totp = pyotp.parse_uri(uri)
    secret = totp.secret
    assert (totp.name, totp.issuer, len(secret)) == ("赵磊 Zhao Lei", "brandsteps", 32)
    qr = io.StringIO()
    segno.make(uri, error="m").terminal(out=qr, compact=True, border=2)  # the same QR code an app scans
    # listed: the variable approvers.yaml names, with the secret to put there
    assert lines == [
        "A new TOTP secret for 赵磊 Zhao Lei. Scan the QR code with an authenticator app (or give it the URI below):",
        *qr.getvalue().splitlines(),
        uri,
        "Keep the secret where brandsteps reads it, on the machines that run `brandsteps approve` and `brandsteps serve`:",
        f"  export BRANDSTEPS_TOTP_TEST_ZHAO='{secret}'",
        "  or a Prefect Secret block named brandsteps-totp-test-zhao (`--save-block` saves it there)",
    ]
    # and its codes are accepted (a step boundary may pass in between, which the one step of drift allows)
    verdict = check_approval(
        CONFIG,
        TEA,
        "affiliate_trial",
        "赵磊 Zhao Lei",
        totp.now(),
        datetime.now(UTC),
        {"BRANDSTEPS_TOTP_TEST_ZHAO": secret}.get,
    )
    assert isinstance(verdict, Accepted) and verdict.approver == "赵磊 Zhao Lei"


def test_enroll_someone_not_listed_says_how_to_list_them(awaiting: Path, capsys: pytest.CaptureFixture[str]) -> None:
    uri, lines = _enroll(awaiting, "Li Wei", capsys)
    secret = pyotp.parse_uri(uri).secret
    assert lines[-3:] == [
        f"  export BRANDSTEPS_TOTP_LI_WEI='{secret}'",
        "  or a Prefect Secret block named brandsteps-totp-li-wei (`--save-block` saves it there)",
        f"Li Wei is not in {awaiting}/approvers.yaml: add them with `- {{name: Li Wei, totp_secret_env: BRANDSTEPS_TOTP_LI_WEI}}` and their stages and brands",
    ]
    assert _enroll(awaiting, "Li Wei", capsys)[0] != uri  # a new secret every time
