"""Security: safe YAML, nothing executed, parameterised SQL, passwords masked everywhere, approvals validated."""

from __future__ import annotations

import ast
import json
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from brandsteps.cli import main
from brandsteps.config import load_portfolio
from brandsteps.engine.cycle import run_day
from brandsteps.ledger import ApprovalInputError, Ledger, LedgerError, redact
from brandsteps.sources.metrics_source import MetricsReadError, MetricsSource, load_metrics, validate
from tests.conftest import simple_playbook, write_configs
from tests.ledger_checks import history, pg_database  # noqa: F401 - a fixture

REPO = Path(__file__).resolve().parents[1]
INJECTION = "a'; DROP TABLE decisions; --"
SECRET = "Tr0ub4dor&3-xyz"


def test_no_eval_exec_pickle_or_unsafe_yaml_in_the_code() -> None:
    # every call in the application code: none may evaluate, unpickle or unsafely parse input
    banned = {
        "eval",
        "exec",
        "compile",
        "__import__",
        "loads:pickle",
        "load:pickle",
        "unsafe_load",
        "full_load",
        "load:marshal",
        "loads:marshal",
    }
    found = []
    for path in [*REPO.glob("brandsteps/**/*.py"), *REPO.glob("tasks/*.py"), *REPO.glob("flows/*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + (
                    [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
                )
                found += [
                    f"{path.name}: import {n}"
                    for n in names
                    if n in {"pickle", "marshal", "shelve", "dill", "cloudpickle"}
                ]
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
            # a method named compile (re.compile, SQLAlchemy's type.compile(dialect=)) is not Python's compile
            is_compile_method = name == "compile" and isinstance(f, ast.Attribute)
            if (name in banned and not is_compile_method) or f"{name}:{owner}" in banned:
                found.append(f"{path.name}:{node.lineno} {owner}.{name}")
            if owner == "yaml" and name == "load":
                loader = next((k.value for k in node.keywords if k.arg == "Loader"), None)
                if not (isinstance(loader, ast.Name) and loader.id == "_UniqueKeyLoader"):
                    found.append(f"{path.name}:{node.lineno} yaml.load without the safe loader")
            if name == "read_pickle" or (
                name in {"run", "Popen", "call", "check_output"} and any(k.arg == "shell" for k in node.keywords)
            ):
                found.append(f"{path.name}:{node.lineno} {name}")
    assert found == []


def test_safe_loader_refuses_python_objects(tmp_path: Path) -> None:
    from brandsteps.config import ConfigError, read_yaml

    path = tmp_path / "x.yaml"
    path.write_text(f"a: !!python/object/apply:os.system ['touch {tmp_path}/pwned']\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"tag '!!python/object/apply:os.system' is not allowed"):
        read_yaml(path, "x.yaml")
    assert not (tmp_path / "pwned").exists()


@pytest.fixture
def decided(tmp_path: Path) -> tuple[Path, Ledger]:
    configs = write_configs(
        tmp_path, {"a": {}, "c": {"requires_approval": ["affiliate_trial"]}}, playbook=simple_playbook()
    )
    ledger = Ledger("sqlite:///data/ledger.sqlite", tmp_path)
    ledger.create()
    batch = validate(history(["a", "c"], 3), as_of=date(2026, 1, 3), today=date(2026, 2, 1))
    for day in range(1, 4):
        run_day(load_portfolio(configs, apply_env=False), batch, ledger, date(2026, 1, day), None)
    return configs, ledger


def test_injection_in_a_brand_id_is_only_a_value(decided) -> None:
    configs, ledger = decided
    assert ledger.decision(INJECTION) is None and ledger.history(INJECTION).empty
    assert ledger.read_state([INJECTION]).empty
    with pytest.raises(ApprovalInputError, match="brand must be a slug"):
        ledger.resolve_approval(INJECTION, by="Li", reason="ok", approve=True)
    assert main(["explain", INJECTION, "--configs", str(configs)]) == 2  # unknown brand: a usage error
    assert ledger.count_decisions() == 6  # the tables and their rows are all still there


@pytest.mark.parametrize(
    "table",
    [
        pytest.param("daily_metrics; DROP TABLE daily_metrics", id="second-statement"),
        pytest.param('daily_metrics"; DROP TABLE daily_metrics; --', id="closing-quote"),
        pytest.param("x UNION SELECT * FROM daily_metrics", id="union"),
    ],
)
def test_injection_in_a_metrics_table_name_is_only_a_name(tmp_path: Path, table: str) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE daily_metrics (brand_id TEXT, date TEXT, gmv REAL)"))
    # the table is looked up by reflection and never spliced into SQL text: not found, nothing dropped
    with pytest.raises(MetricsReadError, match="not found in the metrics database"):
        load_metrics(MetricsSource.parse(f"{url}#{table}"), as_of=date(2026, 1, 3), today=date(2026, 1, 4))
    assert sa.inspect(engine).has_table("daily_metrics")


def test_injection_in_a_metrics_table_name_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_configs(tmp_path, {"a": {}})
    monkeypatch.setenv("BRANDSTEPS_METRICS", f"sqlite:///{tmp_path / 'm.db'}")
    monkeypatch.setenv("BRANDSTEPS_METRICS_TABLE", "daily; DROP TABLE decisions")
    from brandsteps.config import ConfigError

    with pytest.raises(ConfigError) as info:
        load_portfolio(tmp_path / "configs")
    assert info.value.problems == [
        "environment: metrics.table: must be a table name (letters, digits and _, optionally schema.table)"
    ]


@pytest.mark.parametrize(
    ("by", "reason", "error"),
    [
        pytest.param("王敏", "numbers hold", None, id="unicode-name"),  # any Unicode name is fine
        pytest.param("Li", INJECTION, None, id="sql-in-reason"),  # SQL in a reason is stored as text, verbatim
        pytest.param("", "ok", "reviewer name must be 1 to 100 characters (got 0)", id="empty-name"),
        # whitespace is stripped first, so nothing is left
        pytest.param("   ", "ok", "reviewer name must be 1 to 100 characters (got 0)", id="blank-name"),
        pytest.param("x" * 101, "ok", "reviewer name must be 1 to 100 characters (got 101)", id="name-too-long"),
        pytest.param("Li\nroot", "ok", "reviewer name must not contain control characters", id="newline-in-name"),
        # a terminal escape could rewrite what an operator reads
        pytest.param("Li\x1b[2J", "ok", "reviewer name must not contain control characters", id="escape-in-name"),
        pytest.param("Li", "", "reason must be 1 to 1000 characters (got 0)", id="empty-reason"),
        pytest.param("Li", "y" * 1001, "reason must be 1 to 1000 characters (got 1001)", id="reason-too-long"),
        pytest.param("Li", "fine\x00hidden", "reason must not contain control characters", id="nul-in-reason"),
        pytest.param("Li", "line one\nline two", None, id="newline-in-reason"),  # a reason may have several lines
    ],
)
def test_approval_inputs_are_validated_and_limited(decided, by: str, reason: str, error: str | None) -> None:
    _, ledger = decided
    if error is None:
        change = ledger.resolve_approval("c", by=by, reason=reason, approve=True)
        assert (change["actor"], change["reason"]) == (by.strip(), reason.strip())
        assert ledger.history("c").iloc[-1]["reason"] == reason.strip()
    else:
        with pytest.raises(ApprovalInputError) as info:
            ledger.resolve_approval("c", by=by, reason=reason, approve=True)
        assert str(info.value) == f"invalid approval: {error}"
        assert bool(ledger.read_state().loc["c", "awaiting"])  # nothing changed


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        # the password part of a URL, whatever it is
        pytest.param("postgresql://app:s3cret@db:5432/ledger", "postgresql://app:***@db:5432/ledger", id="url"),
        # every URL in a message, a percent-encoded password too
        pytest.param(
            "failed: postgresql+psycopg://u:p%40ss@h/db and mysql://r:x@y/z",
            "failed: postgresql+psycopg://u:***@h/db and mysql://r:***@y/z",
            id="two-urls",
        ),
        # the password of BRANDSTEPS_LEDGER_PASSWORD anywhere in the text, not only in a URL
        pytest.param(
            f"password authentication failed: {SECRET}", "password authentication failed: ***", id="env-secret"
        ),
        pytest.param(
            "sqlite:///data/ledger.sqlite", "sqlite:///data/ledger.sqlite", id="no-password"
        ),  # nothing to hide
    ],
)
def test_redact(monkeypatch: pytest.MonkeyPatch, text: str, masked: str) -> None:
    monkeypatch.setenv("BRANDSTEPS_LEDGER_PASSWORD", SECRET)
    assert redact(text) == masked


def test_ledger_errors_never_show_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRANDSTEPS_LEDGER_PASSWORD", SECRET)
    error = LedgerError(f"cannot open postgresql://app:{SECRET}@db/ledger: auth failed for {SECRET}")
    assert str(error) == "cannot open postgresql://app:***@db/ledger: auth failed for ***"


@pytest.mark.integration
def test_password_never_appears_in_output_logs_artifacts_or_status(
    prefect_server: None,
    pg_database: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # trust auth ignores the password, so a real cycle runs with it in the connection URL
    import asyncio

    from flows.onboarding_cycle import onboarding_cycle
    from tests.flow_helpers import AS_OF, portfolio_dir, post_filter

    monkeypatch.setenv("BRANDSTEPS_LEDGER_PASSWORD", SECRET)
    configs = portfolio_dir(tmp_path, 3)
    state = onboarding_cycle(as_of=AS_OF, configs=str(configs), ledger=pg_database, return_state=True)
    run_id = str(state.state_details.flow_run_id)
    assert state.result().decided == 3
    # a failing run too: its error and traceback go to the logs
    (tmp_path / "data" / "metrics.csv").write_text("", encoding="utf-8")
    failed = onboarding_cycle(as_of=AS_OF, configs=str(configs), ledger=pg_database, return_state=True)
    assert failed.is_failed()
    runs = [run_id, str(failed.state_details.flow_run_id)]
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all()  # logs travel in batches; send what is queued before reading them back
    logs = asyncio.run(post_filter("/logs/filter", {"logs": {"flow_run_id": {"any_": runs}}}))
    artifacts = asyncio.run(post_filter("/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": runs}}}))
    flow_runs = asyncio.run(post_filter("/flow_runs/filter", {"flow_runs": {"id": {"any_": runs}}}))
    assert len(logs) > 5 and len(artifacts) >= 4
    assert any(pg_database.rsplit("/", 1)[1] in log["message"] for log in logs)  # the ledger URL is logged (masked)
    # status in both formats, and a CLI failure that mentions the URL
    assert main(["status", "--configs", str(configs), "--ledger", pg_database]) == 0
    assert main(["status", "--configs", str(configs), "--ledger", pg_database, "--format", "json"]) == 0
    assert (
        main(["status", "--configs", str(configs), "--ledger", "postgresql+psycopg://postgres@127.0.0.1:1/none"]) == 1
    )
    out = capsys.readouterr()
    everything = json.dumps([logs, artifacts, flow_runs]) + out.out + out.err + caplog.text
    assert "***@127.0.0.1" in everything  # masked URLs are shown…
    assert SECRET not in everything  # …and the password nowhere
