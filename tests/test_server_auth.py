"""The desk behind a login: a server with PREFECT_SERVER_API_AUTH_STRING refuses what lacks it; the app works."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from tests.conftest import simple_playbook, write_configs
from tests.prefect_process import (
    BIN,
    CHROMIUM,
    REPO,
    api_client,
    api_post,
    api_settings,
    background,
    chromium_page,
    drain_prefect_workers,
    flow_runs_of,
    latest_artifact,
    prefect_server,
    quiet_env,
    run_logs,
    tracebacks_in_logs,
    tracebacks_in_run_logs,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
BRANDSTEPS, PREFECT = str(BIN / "brandsteps"), str(BIN / "prefect")
DEPLOYMENTS = {"onboarding-cycle", "onboard-brand", "review-brand", "backtest", "import-exports"}
SET_IT = "set it to the user:password the server was started with (its PREFECT_SERVER_API_AUTH_STRING)"
NO_LOGIN = "the Prefect server at {server} wants a login and PREFECT_API_AUTH_STRING is not set (401 Unauthorized): "
NO_LOGIN += SET_IT
WRONG_LOGIN = "the Prefect server at {server} refused PREFECT_API_AUTH_STRING (401 Unauthorized): " + SET_IT


@dataclass
class Desk:
    api: str
    auth: str
    root: Path
    configs: Path
    env: dict[str, str]
    outputs: dict[str, str] = field(default_factory=dict)  # what each command printed, to search for the secret

    @property
    def server(self) -> str:
        return self.api.removesuffix("/api")

    def cli(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """A command against this server (with the login unless env says otherwise), its output kept for the search."""
        done = subprocess.run(args, env=env or self.env, cwd=REPO, capture_output=True, text=True, timeout=180)
        self.outputs[name] = done.stdout + done.stderr
        return done


def _portfolio(root: Path) -> Path:
    """riser advances on 2026-01-03 (GMV 500 a day passes gmv >= 300 twice in a row); approver then awaits approval."""
    brands = {
        "riser": {"name": "快手美妆 Riser"},
        "approver": {"name": "Approver", "requires_approval": ["affiliate_trial"]},
    }
    # a cron that does not fire during the test: every run here is started by the test
    onboarding = {"metrics": "data/metrics.csv", "ledger": "sqlite:///data/ledger.sqlite", "schedule": "0 3 1 1 *"}
    configs = write_configs(root, brands, playbook=simple_playbook(), onboarding=onboarding)
    days = pd.date_range("2026-01-01", "2026-01-03")
    (root / "data").mkdir(exist_ok=True)
    pd.DataFrame([{"brand_id": b, "date": d.date(), "gmv": 500.0, "orders": 5.0} for b in brands for d in days]).to_csv(
        root / "data" / "metrics.csv", index=False
    )
    return configs


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    root = tmp_path_factory.mktemp("auth")
    auth = f"admin:{secrets.token_urlsafe(18)}"
    home = root / "prefect-home"
    with prefect_server(home, PREFECT_SERVER_API_AUTH_STRING=auth) as api:
        env = quiet_env(
            home, api, PREFECT_API_AUTH_STRING=auth, PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_RUNNER_POLL_FREQUENCY="1"
        )
        yield Desk(api, auth, root, _portfolio(root), env)
        drain_prefect_workers()
        # an operator reads these logs too: a traceback in any of them fails the module, whatever it asserted
        logs = [home / "server.log", root / "serve.log", root / "worker.log"]
        assert tracebacks_in_logs(*logs) + tracebacks_in_run_logs(api, auth) == []


def _basic(login: str) -> str:
    return "Basic " + base64.b64encode(login.encode()).decode()


@pytest.mark.parametrize(
    ("method", "path", "authorization", "status"),
    [
        pytest.param("GET", "/api/admin/version", None, 401, id="no-login-get"),
        pytest.param("POST", "/api/flow_runs/filter", None, 401, id="no-login-post"),
        pytest.param("POST", "/api/flow_runs/filter", "wrong-password", 401, id="wrong-password"),
        pytest.param("POST", "/api/flow_runs/filter", "wrong-user", 401, id="wrong-user"),
        pytest.param("POST", "/api/flow_runs/filter", "password-only", 401, id="password-alone"),
        pytest.param("POST", "/api/flow_runs/filter", "bearer", 401, id="bearer-not-basic"),
        pytest.param("POST", "/api/flow_runs/filter", "right", 200, id="the-login"),
        # what Prefect leaves open, holding no data: probes, the UI's own files (it then asks for the login), the schema
        pytest.param("GET", "/api/health", None, 200, id="health-is-open"),
        pytest.param("GET", "/api/ready", None, 200, id="ready-is-open"),
        pytest.param("GET", "/", None, 200, id="ui-page-is-open"),
        pytest.param("GET", "/openapi.json", None, 200, id="api-schema-is-open"),
    ],
)
def test_the_api_refuses_a_missing_or_wrong_login(
    desk: Desk, method: str, path: str, authorization: str | None, status: int
) -> None:
    password = desk.auth.partition(":")[2]
    headers = {
        None: {},
        "wrong-password": {"Authorization": _basic("admin:not-" + password)},
        "wrong-user": {"Authorization": _basic("root:" + password)},
        "password-only": {"Authorization": _basic(password)},
        "bearer": {"Authorization": "Bearer " + base64.b64encode(desk.auth.encode()).decode()},
        "right": {"Authorization": _basic(desk.auth)},
    }[authorization]
    response = httpx.request(
        method, desk.server + path, headers=headers, json={} if method == "POST" else None, timeout=30
    )
    assert response.status_code == status
    if status == 401:
        assert response.json() == {"exception_message": "Unauthorized"}  # the server's one answer, whatever was wrong


def test_the_ui_asks_for_the_whole_login(desk: Desk) -> None:
    settings = httpx.get(desk.server + "/ui-settings", timeout=30).json()
    assert settings["auth"] == "BASIC"  # what makes the UI show its login prompt before any page


@pytest.mark.parametrize(
    ("token", "refused"),
    [
        # a socket without Prefect's handshake (which carries the login) is refused before it opens: HTTP 403
        pytest.param(None, "HTTP 403", id="no-prefect-handshake"),
        pytest.param("admin:wrong", "closed 1008 Invalid token", id="wrong-login"),  # 1008: policy violation
        pytest.param("right", "", id="the-login"),
    ],
)
def test_the_event_stream_refuses_a_missing_or_wrong_login(desk: Desk, token: str | None, refused: str) -> None:
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect

    url = desk.server.replace("http://", "ws://") + "/api/events/out"
    try:
        subprotocols = None if token is None else ["prefect"]
        with connect(url, subprotocols=subprotocols, open_timeout=30) as socket:  # type: ignore[arg-type]
            socket.send(json.dumps({"type": "auth", "token": desk.auth if token == "right" else token}))
            answer = json.loads(socket.recv(timeout=30))
    except InvalidStatus as exc:
        assert f"HTTP {exc.response.status_code}" == refused
    except ConnectionClosed as exc:
        assert f"closed {exc.rcvd.code} {exc.rcvd.reason}" == refused  # type: ignore[union-attr]
    else:
        assert (refused, answer) == ("", {"type": "auth_success"})


@pytest.mark.parametrize(
    ("command", "login", "expected"),
    [
        pytest.param(["run", "--as-of", "2026-01-01"], None, NO_LOGIN, id="run-without-login"),
        pytest.param(["deploy", "--pool", "brandsteps"], "admin:wrong", WRONG_LOGIN, id="deploy-wrong-login"),
        pytest.param(["serve", "--report-port", "0"], "admin:wrong", WRONG_LOGIN, id="serve-wrong-login"),
    ],
)
def test_a_command_refused_says_what_to_set(desk: Desk, command: list[str], login: str | None, expected: str) -> None:
    env = {k: v for k, v in desk.env.items() if k != "PREFECT_API_AUTH_STRING"}
    if login:
        env["PREFECT_API_AUTH_STRING"] = login
    done = desk.cli(f"refused {command[0]}", BRANDSTEPS, *command, "--configs", str(desk.configs), env=env)
    # exit 2: a setting to fix, like a bad config; the last line names the server and the variable (serve says what it
    # serves and warns about its configs before it first asks the server), and no traceback
    last_line = done.stderr.splitlines()[-1] if done.stderr else ""
    expected_line = f"brandsteps: {expected.format(server=desk.server)}"
    assert (done.returncode, last_line) == (2, expected_line), done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def _deployments_ready(desk: Desk) -> bool:
    return {d["name"] for d in api_post(desk.api, "/deployments/filter", {}, desk.auth)} >= DEPLOYMENTS


def _run_deployment(desk: Desk, name: str, parameters: dict[str, Any]) -> Any:
    from prefect.deployments import run_deployment

    with api_settings(desk.api, desk.auth):
        return run_deployment(name, parameters=parameters, timeout=180, as_subflow=False)


def _run_state(desk: Desk, flow_name: str, run_id: str) -> str:
    return next(r["state_type"] for r in flow_runs_of(desk.api, flow_name, desk.auth) if r["id"] == run_id)


def _paused_review(desk: Desk) -> dict[str, Any] | None:
    runs = flow_runs_of(desk.api, "review-brand", desk.auth)
    return next((r for r in runs if r["state_type"] == "PAUSED"), None)


def test_serve_the_cli_and_a_worker_work_behind_the_login(desk: Desk) -> None:
    if not Path(CHROMIUM).exists() and os.environ.get("CI") != "true":
        pytest.skip("Chromium not installed (apt-get install chromium); .ci/run installs it")
    # 1. the CLI runs days through Prefect on the server, with the login from the environment
    ran = desk.cli(
        "run", BRANDSTEPS, "run", "--as-of", "2026-01-01", "--to", "2026-01-02", "--configs", str(desk.configs)
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    serve = [BRANDSTEPS, "serve", "--configs", str(desk.configs), "--report-port", "0"]
    with background(serve, desk.env, desk.root / "serve.log") as served:
        cycle_id = _serve_a_cycle(desk, served)
        _approve_from_the_terminal(desk)
        _see_the_run_in_the_ui(desk, cycle_id)
        drain_prefect_workers()
    _run_on_a_worker(desk)
    # 6. the login shows nowhere: logs, run logs, artifacts, run and deployment records, events, blocks, the database
    places = _everything_an_operator_can_read(desk)
    password = desk.auth.partition(":")[2]
    forms = {"auth string": desk.auth, "password": password, "base64": base64.b64encode(desk.auth.encode()).decode()}
    found = {place: [name for name, form in forms.items() if form in text] for place, text in places.items()}
    assert found == {place: [] for place in places}
    assert {"run", "approve", "deploy", "run logs", "artifacts", "server database"} <= set(places)  # it saw them all


def _serve_a_cycle(desk: Desk, served: subprocess.Popen[bytes]) -> str:
    """2. serve registers the five deployments; the cycle's deployment runs the last day and publishes its artifacts."""
    wait_for("deployments", lambda: _deployments_ready(desk) or served.poll() is not None)
    assert served.poll() is None, (desk.root / "serve.log").read_text()
    cycle = _run_deployment(desk, "onboarding-cycle/onboarding-cycle", {"as_of": "2026-01-03"})
    assert cycle.state.is_completed(), (desk.root / "serve.log").read_text()[-3000:]
    funnel = json.loads(latest_artifact(desk.api, "stage-funnel", desk.auth)["data"])
    # riser advanced, approver waits in affiliate_trial
    assert [(r["stage"], r["brands"]) for r in funnel][:2] == [("1 Affiliate trial", 1), ("2 Public traffic", 1)]
    return str(cycle.id)


def _approve_from_the_terminal(desk: Desk) -> None:
    """3. the cycle started approver's review; `brandsteps approve` decides it and closes the paused form."""
    review = wait_for("approver's paused review", lambda: _paused_review(desk), timeout=120)
    approve = ["approve", "approver", "--by", "Li Wei", "--reason", "GMV holds", "--configs", str(desk.configs)]
    approved = desk.cli("approve", BRANDSTEPS, *approve)
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert approved.stdout.splitlines() == [
        "approver: approved by Li Wei: affiliate_trial -> public_traffic",
        f"  review run {review['name']}: answered, it completes saying who decided",
    ]
    wait_for(
        "the review to complete", lambda: _run_state(desk, "review-brand", review["id"]) == "COMPLETED", timeout=120
    )


def _see_the_run_in_the_ui(desk: Desk, cycle_id: str) -> None:
    """4. what a person sees: the run page once logged in at the UI's prompt; with a wrong login, none of it."""
    shots = desk.root / "screenshots"
    shots.mkdir()
    url = f"{desk.server}/runs/flow-run/{cycle_id}"
    page = chromium_page(url, shots / "flow-run.png", desk.auth, expect="affiliate_trial: 2 brands decided")
    assert "affiliate_trial: 2 brands decided" in page  # the run's log line, read from the API with the login
    refused = chromium_page(url, shots / "refused.png", "admin:wrong", expect="Authentication failed.")
    assert "Authentication failed." in refused and "affiliate_trial" not in refused  # the UI's notice, no run


def _run_on_a_worker(desk: Desk) -> None:
    """5. a worker of a process pool runs the deployments `brandsteps deploy` registered for it."""
    created = desk.cli("work-pool", PREFECT, "work-pool", "create", "brandsteps", "--type", "process")
    assert created.returncode == 0, created.stdout + created.stderr
    deployed = desk.cli("deploy", BRANDSTEPS, "deploy", "--pool", "brandsteps", "--configs", str(desk.configs))
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    with background([PREFECT, "worker", "start", "--pool", "brandsteps"], desk.env, desk.root / "worker.log"):
        report = _run_deployment(desk, "onboard-brand/onboard-brand", {"brand_id": "riser", "as_of": "2026-01-03"})
        assert report.state.is_completed(), (desk.root / "worker.log").read_text()[-3000:]
        assert "gmv" in latest_artifact(desk.api, "brand-report-riser", desk.auth)["data"]
        drain_prefect_workers()


def _everything_an_operator_can_read(desk: Desk) -> dict[str, str]:
    """Each place the secret could land, as text: files, command output, and what the API gives back."""
    home = desk.env["PREFECT_HOME"]
    files = [Path(home) / "server.log", desk.root / "serve.log", desk.root / "worker.log"]
    places = {path.name: path.read_text(errors="replace") for path in files}
    places.update(desk.outputs)
    places["run logs"] = json.dumps(run_logs(desk.api, desk.auth), ensure_ascii=False)
    for name, path, body in [
        ("artifacts", "/artifacts/filter", {}),
        ("flow runs", "/flow_runs/filter", {}),
        ("task runs", "/task_runs/filter", {}),
        ("deployments", "/deployments/filter", {}),
        ("work pools", "/work_pools/filter", {}),
        ("blocks", "/block_documents/filter", {"include_secrets": True}),
        ("variables", "/variables/filter", {}),
    ]:
        places[name] = json.dumps(api_post(desk.api, path, body, desk.auth), ensure_ascii=False)
    with api_client(desk.api, desk.auth) as client:
        events = client._client.post("/events/filter", json={"limit": 50}).json()
    places["events"] = json.dumps(events, ensure_ascii=False)
    # whatever the server stored, read or not by the API: its SQLite database and write-ahead log, byte for byte
    database = [Path(home) / name for name in ("prefect.db", "prefect.db-wal") if (Path(home) / name).exists()]
    places["server database"] = "".join(path.read_bytes().decode("latin-1") for path in database)
    return places


def test_a_temporary_server_has_a_login_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`run` and `demo` without PREFECT_API_URL: the temporary server wants a fresh login; the command sends it."""
    from prefect import flow, get_client, get_run_logger
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    from brandsteps.cli.prefect_server import _settle_prefect, prefect_api

    user_login = "admin:" + secrets.token_urlsafe(12)  # set for the operator's real server; must not open this one
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PREFECT_SERVER_API_AUTH_STRING", user_login)
    monkeypatch.setenv("PREFECT_API_AUTH_STRING", user_login)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)

    @flow(name="auth-probe")
    def probe() -> str:
        get_run_logger().info("logged in")
        return "done"

    # local server mode whatever an earlier test set in this process's Prefect settings
    with temporary_settings(restore_defaults={PREFECT_API_URL, PREFECT_API_AUTH_STRING}), prefect_api() as server:
        refused = [
            httpx.post(f"{server.api_url}/flows/filter", json={}, headers=h, timeout=30).status_code
            for h in ({}, {"Authorization": _basic(user_login)})
        ]
        assert refused == [401, 401]  # neither no login nor the environment's opens it
        assert (
            server.auth_string.startswith("brandsteps:")
            and len(server.auth_string) > 30
            and user_login not in server.auth_string
        )
        assert probe() == "done"  # this process's flow runs, task runs and logs go to it with its login
        _settle_prefect()
        with get_client(sync_client=True) as client:
            lines = [log.message for log in client.read_logs()]
    assert "logged in" in lines
