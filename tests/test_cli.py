"""Command line: exit codes (0 ok, 2 config/usage, 1 failure) and the JSON formats."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from brandsteps.cli import main
from brandsteps.config import load_portfolio
from brandsteps.engine.cycle import run_day
from brandsteps.ledger import Ledger
from brandsteps.sources.metrics_source import validate
from tests.conftest import simple_playbook, write_configs
from tests.ledger_checks import history


@pytest.fixture
def decided(tmp_path: Path) -> Path:
    """A portfolio with three days decided into its default ledger (data/ledger.sqlite)."""
    configs = write_configs(
        tmp_path,
        {"a": {"name": "山野茶社"}, "c": {"requires_approval": ["affiliate_trial"]}},
        playbook=simple_playbook(),
    )
    portfolio = load_portfolio(configs, apply_env=False)
    ledger = Ledger("sqlite:///data/ledger.sqlite", tmp_path)
    ledger.create()
    batch = validate(history(["a", "c"], 3), as_of=date(2026, 1, 3), today=date(2026, 2, 1))
    for day in range(1, 4):
        run_day(portfolio, batch, ledger, date(2026, 1, day), None)
    return configs


def test_validate_ok_and_broken(tmp_path: Path, decided: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--configs", str(decided)]) == 0
    assert "OK — 5 stages, 2 brands" in capsys.readouterr().out
    (decided / "brands" / "a.yaml").write_text("brand_id: a\ntier: huge\n", encoding="utf-8")
    assert main(["validate", "--configs", str(decided)]) == 2
    err = capsys.readouterr().err
    assert "configs/brands/a.yaml: tier: must be one of" in err and "Traceback" not in err


def test_validate_warns_where_prefect_yaml_and_serve_disagree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configs = write_configs(tmp_path, {"a": {}}, playbook=simple_playbook(), onboarding={"metrics": "data/metrics.csv"})
    repo_yaml = Path(__file__).resolve().parents[1] / "prefect.yaml"
    # beside the configs: the prefect.yaml serve reads too
    (tmp_path / "prefect.yaml").write_text(repo_yaml.read_text(encoding="utf-8"), encoding="utf-8")
    assert main(["validate", "--configs", str(configs)]) == 0  # warnings, not errors: both ways run
    # the checkout's prefect.yaml runs the cycle at its noon deadline and on imports; this portfolio has no deadline
    assert [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: prefect.yaml")] == [
        "warning: prefect.yaml: onboarding-cycle schedule 'onboarding-cycle-at-data-deadline' runs on '0 12 * * *' "
        "but configs/onboarding.yaml sets no data_deadline; `brandsteps serve` leaves that schedule out, "
        "`prefect deploy` follows prefect.yaml",
        "warning: prefect.yaml: onboarding-cycle's trigger on brandsteps.metrics.imported is enabled but "
        "configs/onboarding.yaml sets no data_deadline, so a cycle an import starts would decide every brand on what "
        "has arrived; "
        "`brandsteps serve` disables it, `prefect deploy` would not (set enabled: false)",
    ]


def test_status_and_explain_json(decided: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--configs", str(decided), "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["funnel"]["public_traffic"] == 1  # a advanced on day 3; c waits for approval
    assert main(["explain", "a", "--configs", str(decided), "--format", "json", "--as-of", "2026-01-03"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert (record["verdict"], record["action"]) == ("PASS", "advance")
    assert record["criteria"][0]["reason"] == "gmv ¥1,500.00 >= ¥300.00"  # a window sum: 3 days × 500, money as money
    assert record["stage_history"][0]["to_stage"] == "public_traffic"


def test_approve_then_reject_is_a_usage_error(decided: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["approve", "c", "--by", "王敏", "--reason", "numbers hold", "--configs", str(decided)]) == 0
    assert "c: approved by 王敏: affiliate_trial -> public_traffic" in capsys.readouterr().out
    # nothing is awaiting any more: refusing is a usage error, not a crash
    assert main(["approve", "c", "--by", "王敏", "--reason", "again", "--reject", "--configs", str(decided)]) == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        # a brand is known by its file in configs/brands/: the message says which file is missing
        pytest.param(
            ["explain", "nobody"], "unknown brand 'nobody': no {configs}/brands/nobody.yaml", id="explain-unknown"
        ),
        pytest.param(
            ["approve", "nobody", "--by", "王敏", "--reason", "numbers hold"],
            "unknown brand 'nobody': no {configs}/brands/nobody.yaml",
            id="approve-unknown",
        ),
        # a day to decide may not be after today in the portfolio's timezone (Asia/Shanghai)
        pytest.param(
            ["run", "--as-of", "2999-01-01"],
            "--as-of 2999-01-01 is in the future (today is {today} in Asia/Shanghai)",
            id="future-day",
        ),
        # the ledger holds 2026-01-01 to 2026-01-03 only
        pytest.param(["explain", "a", "--as-of", "2025-01-01"], "a has no decision on 2025-01-01", id="no-decision"),
    ],
)
def test_usage_errors_exit_2(decided: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    from brandsteps.config.settings import today_in

    assert main([*argv, "--configs", str(decided)]) == 2
    expected = message.format(configs=decided, today=today_in("Asia/Shanghai"))
    assert capsys.readouterr().err == f"brandsteps: {expected}\n"


def test_bad_arguments_exit_2() -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "--as-of", "yesterday"])
    assert info.value.code == 2


def test_a_reader_that_leaves_early_is_not_an_error(
    decided: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # `brandsteps status | head -1` after head has gone: every write raises BrokenPipeError; exit 0, no message
    import os
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)
    gone = os.fdopen(write_end, "w", buffering=1)  # line-buffered, like a terminal: each line is written at once
    with capsys.disabled():
        monkeypatch.setattr(sys, "stdout", gone)
        assert main(["status", "--configs", str(decided)]) == 0
        monkeypatch.undo()
    assert capsys.readouterr().err == ""


def test_explain_reads_only_its_brand_file(decided: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # another brand's broken file: status (the whole portfolio) refuses it, explain (one brand) never reads it
    (decided / "brands" / "zz.yaml").write_text("tier: [\n", encoding="utf-8")
    assert main(["explain", "a", "--configs", str(decided), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["brand_id"] == "a"
    assert main(["status", "--configs", str(decided)]) == 2
    assert "configs/brands/zz.yaml: invalid YAML" in capsys.readouterr().err


def test_status_json_has_one_line_per_brand(decided: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--configs", str(decided), "--format", "json"]) == 0
    out = capsys.readouterr().out
    status = json.loads(out)
    brand_lines = [line.strip().rstrip(",") for line in out.splitlines() if line.startswith('    {"brand_id"')]
    assert [json.loads(line) for line in brand_lines] == status["brands"]  # each brand's row is one line
    assert status["funnel"] == {
        "affiliate_trial": 1,
        "public_traffic": 1,
        "self_broadcast": 0,
        "private_repurchase": 0,
        "channel_exclusive": 0,
        "graduated": 0,
        "exited": 0,
    }
    # a passed on days 2 and 3 (day 1 was before the 2-day minimum) and advanced on day 3: its new stage starts on day 4
    assert status["brands"][1] == {
        "brand_id": "a",
        "name": "山野茶社",
        "tier": "small",
        "owner": None,
        "stage": "public_traffic",
        "stage_entered_on": "2026-01-04",
        "last_as_of": "2026-01-03",
        "verdict": "PASS",
        "action": "advance",
        "reason": "all must criteria pass; score 1 >= pass_score 1",
        "awaiting": False,
        "overdue": False,
        "paused": False,
        # its last stage change: that day-3 advance, by the cycle (no actor)
        "last_change": {
            "as_of": "2026-01-03",
            "cause": "decision",
            "actor": None,
            "reason": "PASS 2 of 2 in a row: advance to public_traffic",
            "from_stage": "affiliate_trial",
            "to_stage": "public_traffic",
            "action": "advance",
        },
    }
    # c earned the same passes but its first stage requires approval: it waits, still in affiliate_trial (sorted first)
    assert (status["brands"][0]["brand_id"], status["brands"][0]["stage"], status["brands"][0]["awaiting"]) == (
        "c",
        "affiliate_trial",
        True,
    )


@pytest.mark.integration
def test_run_ends_with_the_cycle_summary(
    prefect_server: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a advances on its 2nd pass in a row; c earned the same but needs approval; f fails; e's day-3 row is not a number;
    # zz has rows but no config
    configs = write_configs(
        tmp_path,
        {"a": {"name": "山野茶社"}, "c": {"requires_approval": ["affiliate_trial"]}, "e": {}, "f": {}},
        playbook=simple_playbook(),
    )
    rows = history(["a", "c", "e", "f", "zz"], 3)
    rows.loc[rows["brand_id"] == "f", "gmv"] = 50.0  # a window sum of 150 < 300
    portfolio = load_portfolio(configs, apply_env=False)
    ledger = Ledger("sqlite:///data/ledger.sqlite", tmp_path)
    ledger.create()
    for day in (1, 2):  # the days before, with the cycle's own functions
        run_day(
            portfolio,
            validate(rows, as_of=date(2026, 1, day), today=date(2026, 2, 1)),
            ledger,
            date(2026, 1, day),
            None,
        )
    rows["gmv"] = rows["gmv"].astype(object)
    rows.loc[(rows["brand_id"] == "e") & (rows["date"] == "2026-01-03"), "gmv"] = (
        "abc"  # CSV line 10: header, then a's and c's 3 days, e's 3rd
    )
    rows.to_csv(tmp_path / "data" / "metrics.csv", index=False)
    assert main(["run", "--as-of", "2026-01-03", "--configs", str(configs)]) == 0
    out = capsys.readouterr().out.splitlines()
    # the terminal ends with the lines of the cycle-summary artifact (report.summary_lines), after the funnel
    assert out[out.index("Cycle 2026-01-03:") :] == [
        "Cycle 2026-01-03:",
        "  Decided 4 brands: PASS 2, FAIL 1, ERROR 1.",
        "  Moves: advance 1, await_approval 1 (2 brands hold).",
        "  Quarantined 1 metric row: metrics.csv row 10 (e, 2026-01-03): gmv: 'abc' is not a number (all of them: the quarantined-rows artifact).",
        "  ERROR (data failed validation): e.",
        "  3 metric rows of brands no config knows, left out: zz.",
    ]
    assert out[0] == "Brands per stage:" and "1 Affiliate trial" in out[1]
