"""Tests of the visual report: charts carry the ledger's data, the page stands alone and renders in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brandsteps.config import load_portfolio
from brandsteps.cycle import run_day
from brandsteps.ledger import Ledger
from brandsteps.metrics_source import validate
from brandsteps.visual_report import funnel_figure, funnel_over_time, funnel_points, read_report_data, stage_durations, write_report
from tests.conftest import simple_playbook, write_configs

CHROMIUM = "/usr/bin/chromium"
DAYS = 12


@pytest.fixture(scope="module")
def ledger_and_portfolio(tmp_path_factory: pytest.TempPathFactory) -> tuple[Ledger, object, Path]:
    """Three brands over 12 days of the simple playbook: aa and bb pass every day, cc never sells enough."""
    root = tmp_path_factory.mktemp("visual")
    configs = write_configs(root, {"aa": {}, "bb": {}, "cc": {}}, simple_playbook())
    portfolio = load_portfolio(configs, apply_env=False)
    days = pd.date_range("2026-01-01", periods=DAYS)
    raw = pd.DataFrame({"brand_id": np.repeat(["aa", "bb", "cc"], DAYS), "date": np.tile(days.strftime("%Y-%m-%d"), 3),
                        "gmv": np.repeat([400.0, 500.0, 10.0], DAYS), "orders": 10.0})
    history = validate(raw, as_of=date(2026, 1, DAYS), today=date(2026, 1, DAYS + 1))
    ledger = Ledger(f"sqlite:///{root / 'ledger.sqlite'}")
    ledger.create()
    for i in range(DAYS):
        run_day(portfolio, history, ledger, date(2026, 1, 1) + timedelta(days=i), None)
    return ledger, portfolio, root


def test_funnel_has_one_point_per_day_and_counts_every_brand(ledger_and_portfolio) -> None:
    ledger, _, _ = ledger_and_portfolio
    data = read_report_data(ledger)
    funnel = funnel_over_time(data)
    assert len(funnel) == DAYS
    assert (funnel.sum(axis=1) == 3).all()  # three brands decided every day
    points = funnel_points(funnel_figure(funnel))
    assert set(points.values()) == {DAYS}  # every stage line has one point per day
    # all three start in stage 1; aa and bb pass on days 2 and 3 (min 2 days in stage, 2 passes) and advance on 01-03
    assert funnel.loc["2026-01-01", "affiliate_trial"] == 3
    assert funnel.loc["2026-01-03", "public_traffic"] == 2


def test_stage_durations_are_the_days_in_stage_at_leaving(ledger_and_portfolio) -> None:
    ledger, _, _ = ledger_and_portfolio
    durations = stage_durations(read_report_data(ledger))
    first = durations[durations["stage"] == "affiliate_trial"]
    # min_days_in_stage 2 makes day 1 INCONCLUSIVE; passes on days 2 and 3 advance on day 3
    assert first["days_in_stage"].tolist() == [3, 3] and sorted(first["brand_id"]) == ["aa", "bb"]


def test_report_page_is_self_contained(ledger_and_portfolio, tmp_path: Path) -> None:
    ledger, portfolio, _ = ledger_and_portfolio
    page = write_report(portfolio, ledger, tmp_path / "rep")
    text = page.read_text(encoding="utf-8")
    assert re.search(r'id="funnel"[^>]*data-points="12"', text)
    assert text.count("data:image/png;base64,") == 5  # funnel, durations, three brands
    assert not re.search(r'(src|href)="(http|//)', text)  # nothing fetched from elsewhere
    assert sorted(p.name for p in (tmp_path / "rep").glob("*.png")) == ["brand-aa.png", "brand-bb.png", "brand-cc.png", "funnel.png", "stage_durations.png"]


def test_report_renders_in_headless_chromium(ledger_and_portfolio, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing on CI: install it with `apt-get install -y chromium`")
        pytest.skip(f"{CHROMIUM} is missing: `apt-get install -y chromium` to run this check")
    ledger, portfolio, _ = ledger_and_portfolio
    page = write_report(portfolio, ledger, tmp_path / "rep")
    shot = tmp_path / "shot.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
           f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2000", f"--screenshot={shot}", page.as_uri()]
    subprocess.run(cmd, check=True, timeout=120, capture_output=True, env={**os.environ, "HOME": str(tmp_path)})
    from PIL import Image

    image = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert image.shape == (2000, 1280)
    # A blank or error page is one flat colour; the charts give dark lines on white.
    assert (image < 128).mean() > 0.005 and image.std() > 20
    assert shutil.which("chromium") or Path(CHROMIUM).exists()


def test_cli_report(ledger_and_portfolio, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from brandsteps.cli import main

    ledger, portfolio, root = ledger_and_portfolio
    out = tmp_path / "cli"
    assert main(["report", "--configs", str(portfolio.root), "--ledger", str(ledger.url), "--from", "2026-01-05", "--to", "2026-01-08", "--out", str(out)]) == 0
    assert re.search(r'id="funnel"[^>]*data-points="4"', (out / "index.html").read_text(encoding="utf-8"))  # 01-05 to 01-08
    assert main(["report", "--configs", str(portfolio.root), "--ledger", str(ledger.url), "--from", "2026-01-08", "--to", "2026-01-05", "--out", str(out)]) == 2
