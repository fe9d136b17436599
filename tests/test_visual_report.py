"""Tests of the visual report: charts carry the ledger's data, brands come by need of attention, the page is served over HTTP and renders in Chromium."""

from __future__ import annotations

import asyncio
import http.client
import os
import re
import shutil
import socket
import subprocess
import urllib.request
import warnings
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urljoin

import numpy as np
import pandas as pd
import pytest

import brandsteps.reports.visual as visual
from brandsteps.catalogue import STAGE_ORDER
from brandsteps.config import load_portfolio
from brandsteps.engine.cycle import run_day
from brandsteps.ledger import Ledger
from brandsteps.reports.report_server import ReportServer, report_link, resolve_request, start_report_server
from brandsteps.reports.visual import brand_charts, charts, style, write_report
from brandsteps.reports.visual.attention import attention_order
from brandsteps.reports.visual.data import funnel_over_time, read_overview, read_report_data, stage_durations
from brandsteps.sources.metrics_source import validate
from tests.conftest import simple_playbook, write_configs

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
DAYS = 12
LAGGARD = "拖后腿 Laggard"


def _need_chromium() -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing on CI: install it with `apt-get install -y chromium fonts-wqy-zenhei`")
        pytest.skip(f"{CHROMIUM} is missing: `apt-get install -y chromium fonts-wqy-zenhei` to run this check")


@pytest.fixture(scope="module")
def ledger_and_portfolio(tmp_path_factory: pytest.TempPathFactory) -> tuple[Ledger, object, Path]:
    """Three brands over 12 days of the simple playbook: aa and bb pass every day, cc (拖后腿) never sells enough."""
    root = tmp_path_factory.mktemp("visual")
    configs = write_configs(root, {"aa": {}, "bb": {}, "cc": {"name": LAGGARD}}, simple_playbook())
    portfolio = load_portfolio(configs, apply_env=False)
    days = pd.date_range("2026-01-01", periods=DAYS)
    raw = pd.DataFrame(
        {
            "brand_id": np.repeat(["aa", "bb", "cc"], DAYS),
            "date": np.tile(days.strftime("%Y-%m-%d"), 3),
            "gmv": np.repeat([400.0, 500.0, 10.0], DAYS),
            "orders": 10.0,
        }
    )
    history = validate(raw, as_of=date(2026, 1, DAYS), today=date(2026, 1, DAYS + 1))
    ledger = Ledger(f"sqlite:///{root / 'ledger.sqlite'}")
    ledger.create()
    for i in range(DAYS):
        run_day(portfolio, history, ledger, date(2026, 1, 1) + timedelta(days=i), None)
    return ledger, portfolio, root


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ReportServer, Path]]:
    root = tmp_path / "reports"
    server = start_report_server(root, "127.0.0.1", 0)
    try:
        yield server, root
    finally:
        server.stop()


# ---------------------------------------------------------------- charts and data


def test_funnel_is_stacked_bars_one_per_day(ledger_and_portfolio) -> None:
    ledger, _, _ = ledger_and_portfolio
    funnel = funnel_over_time(read_report_data(ledger))
    assert len(funnel) == DAYS
    assert (funnel.sum(axis=1) == 3).all()  # three brands decided every day
    # all three start in stage 1; aa and bb pass on days 2 and 3 (min 2 days in stage, 2 passes) and advance on 01-03
    assert funnel.loc["2026-01-01", "affiliate_trial"] == 3
    assert funnel.loc["2026-01-03", "public_traffic"] == 2
    grid = charts.funnel_grid(funnel.to_numpy(), 300, 4)  # 300 pixel rows for 0 to 4 brands: 75 rows a brand
    for day, counts in enumerate(funnel.to_numpy()):
        column = grid[:, day]
        # each stage's bar is as tall as its brands, stacked from the bottom in stage order, white above the total
        assert [int((column == i).sum()) for i in range(len(funnel.columns))] == [75 * int(c) for c in counts]
        assert (column[:75] == -1).all() and (np.diff(column[75:]) <= 0).all()


def test_funnel_image_has_a_bar_for_every_day(ledger_and_portfolio) -> None:
    ledger, _, _ = ledger_and_portfolio
    funnel = funnel_over_time(read_report_data(ledger))
    first = pd.Timestamp("2026-01-01")
    image = np.asarray(charts.funnel_image(funnel, first, DAYS, charts.day_ticks(first, DAYS)))
    day_px = 720 // DAYS
    bottom_row = image[40 + 319, 46 + day_px // 2 : 46 + DAYS * day_px : day_px]  # the plot's last pixel row, mid-bar
    # the bottom of every day's bar is drawn in the colour of the lowest stage with brands that day (affiliate_trial here)
    assert (
        np.abs(bottom_row.astype(int) - style.hex_rgb(style.STAGE_COLOURS["affiliate_trial"])).sum(axis=1) == 0
    ).all()


@pytest.mark.parametrize(
    ("top", "ticks"),
    [
        pytest.param(0, [0, 1], id="nothing-yet"),
        pytest.param(3, [0, 1, 2, 3], id="three-brands-no-half-brands"),
        pytest.param(8, [0, 1, 2, 3, 4, 5, 6, 7, 8], id="eight-ticks-at-most-plus-zero"),
        pytest.param(9, [0, 2, 4, 6, 8, 10], id="steps-of-two"),
        pytest.param(50, [0, 10, 20, 30, 40, 50], id="fifty"),
        pytest.param(51, [0, 10, 20, 30, 40, 50, 60], id="just-over"),
        pytest.param(100_000, [0, 20_000, 40_000, 60_000, 80_000, 100_000], id="a-large-portfolio"),
        pytest.param(2.5, [0, 1, 2, 3], id="fractional-top-rounds-up"),
    ],
)
def test_integer_ticks(top: float, ticks: list[int]) -> None:
    assert charts.integer_ticks(top) == ticks


def test_box_stats_whiskers_stop_at_the_last_value_within_one_and_a_half_iqr() -> None:
    st = charts.box_stats(np.array([10.0, 12, 14, 16, 18, 60]))
    # quartiles 12.5 and 17.5 (linear), IQR 5: values up to 25 are inside, 60 is an outlier
    assert (st["q1"], st["median"], st["q3"], st["low"], st["high"], st["n"]) == (12.5, 15.0, 17.5, 10.0, 18.0, 6)
    assert st["outliers"].tolist() == [60.0] and st["mean"] == 130 / 6


def test_stage_durations_are_the_days_in_stage_at_leaving(ledger_and_portfolio) -> None:
    ledger, _, _ = ledger_and_portfolio
    durations = stage_durations(read_report_data(ledger))
    first = durations[durations["stage"] == "affiliate_trial"]
    # min_days_in_stage 2 makes day 1 INCONCLUSIVE; passes on days 2 and 3 advance on day 3
    assert first["days_in_stage"].tolist() == [3, 3] and sorted(first["brand_id"]) == ["aa", "bb"]


@pytest.mark.parametrize(
    "span",
    [
        pytest.param((None, None), id="whole-ledger"),
        pytest.param((date(2026, 1, 4), date(2026, 1, 9)), id="six-days"),
        pytest.param((date(2026, 1, 1), date(2026, 1, 2)), id="no-brand-left-a-stage"),  # the first moves are on 01-03
    ],
)
def test_overview_queries_agree_with_the_decisions(ledger_and_portfolio, span: tuple[date | None, date | None]) -> None:
    """The cycle's report aggregates in SQL instead of reading every decision: the same funnel, stays and order."""
    ledger, _, _ = ledger_and_portfolio
    data = read_report_data(ledger, *span)
    overview = read_overview(ledger, *span)
    pd.testing.assert_frame_equal(overview.funnel, funnel_over_time(data), check_names=False)
    expected = stage_durations(data).reset_index(drop=True)
    pd.testing.assert_frame_equal(
        overview.durations[expected.columns].reset_index(drop=True), expected, check_dtype=False
    )
    pd.testing.assert_frame_equal(overview.order, attention_order(data.decisions, data.date_to))
    assert overview.n_decisions == len(data.decisions)


def test_fixture_order_laggard_first(ledger_and_portfolio) -> None:
    ledger, _, _ = ledger_and_portfolio
    order = read_overview(ledger).order
    # cc fails every day and is past max_days_in_stage 10 on day 12; aa and bb tie, so by id
    assert list(order["brand_id"]) == ["cc", "aa", "bb"]
    assert list(order["label"]) == ["overdue", "in-progress", "in-progress"]


END = date(2026, 3, 31)


def _decisions(spec: dict[str, list[tuple]]) -> pd.DataFrame:
    """Rows from (days before END, action, verdict, stage, to_stage, days_in_stage, overdue) per brand."""
    rows = [
        {
            "brand_id": b,
            "as_of": pd.Timestamp(END - timedelta(days=ago)),
            "action": a,
            "verdict": v,
            "stage": s,
            "to_stage": t,
            "days_in_stage": n,
            "overdue": o,
            "reason": f"{v.lower()} reason",
        }
        for b, items in spec.items()
        for ago, a, v, s, t, n, o in items
    ]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=3)  # the order must not come from the rows' order


HOLD_PASS = ("hold", "PASS", "public_traffic", "public_traffic", 20, False)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        # One brand per tier: the tiers decide, whatever the brand ids and row order say.
        pytest.param(
            {
                "a-fine": [(0, *HOLD_PASS)],
                "b-done": [(0, "hold", "PASS", "graduated", "graduated", 40, False)],
                "c-wait": [(0, "await_approval", "PASS", "self_broadcast", "self_broadcast", 15, False)],
                "d-fail": [(0, "hold", "FAIL", "public_traffic", "public_traffic", 12, False)],
                "e-late": [(0, "hold", "INCONCLUSIVE", "public_traffic", "public_traffic", 70, True)],
                "f-down": [(3, "demote", "FAIL", "self_broadcast", "public_traffic", 30, False), (0, *HOLD_PASS)],
            },
            ["f-down", "e-late", "d-fail", "c-wait", "a-fine", "b-done"],
            id="one-brand-per-tier",
        ),
        # A set-back counts while recent (14 days): a demotion 20 days ago is history, a recycle 13 days ago is not.
        pytest.param(
            {
                "old-demote": [(20, "demote", "FAIL", "self_broadcast", "public_traffic", 30, False), (0, *HOLD_PASS)],
                "recycled": [(13, "recycle", "FAIL", "public_traffic", "public_traffic", 14, False), (0, *HOLD_PASS)],
                "failing": [(0, "hold", "FAIL", "public_traffic", "public_traffic", 5, False)],
            },
            ["recycled", "failing", "old-demote"],
            id="set-back-only-while-recent",
        ),
        # Exiting is a set-back too, and afterwards the brand is finished: exited last week first, exited long ago last.
        pytest.param(
            {
                "gone-long-ago": [
                    (60, "exit", "FAIL", "affiliate_trial", "exited", 30, False),
                    (0, "hold", "INCONCLUSIVE", "exited", "exited", 90, False),
                ],
                "gone-lately": [
                    (6, "exit", "FAIL", "affiliate_trial", "exited", 30, False),
                    (0, "hold", "INCONCLUSIVE", "exited", "exited", 6, False),
                ],
                "fine": [(0, *HOLD_PASS)],
            },
            ["gone-lately", "fine", "gone-long-ago"],
            id="exit-recent-then-finished",
        ),
        # Overdue outranks failing (both held, but one is also out of time); ERROR (bad data) counts as failing;
        # a graduated brand failing a guardrail is failing, not finished.
        pytest.param(
            {
                "grad-guardrail": [(0, "hold", "FAIL", "graduated", "graduated", 50, False)],
                "bad-data": [(0, "hold", "ERROR", "public_traffic", "public_traffic", 3, False)],
                "late-and-failing": [(0, "hold", "FAIL", "public_traffic", "public_traffic", 61, True)],
            },
            ["late-and-failing", "grad-guardrail", "bad-data"],
            id="overdue-then-failing-incl-error-and-graduated",
        ),
        # Within a tier: more FAIL/ERROR days in the last 14 first, then longer in stage, then brand id.
        pytest.param(
            {
                "once-long": [(0, "hold", "FAIL", "public_traffic", "public_traffic", 40, False)],
                "thrice": [(d, "hold", "FAIL", "public_traffic", "public_traffic", 10 - d, False) for d in (2, 1, 0)],
                "once-short-b": [(0, "hold", "FAIL", "public_traffic", "public_traffic", 9, False)],
                "once-short-a": [(0, "hold", "FAIL", "public_traffic", "public_traffic", 9, False)],
                "fail-before-window": [
                    (20, "hold", "FAIL", "public_traffic", "public_traffic", 19, False),
                    (0, "hold", "FAIL", "public_traffic", "public_traffic", 39, False),
                ],
            },
            ["thrice", "once-long", "fail-before-window", "once-short-a", "once-short-b"],
            id="within-tier-fails-then-days-then-id",
        ),
    ],
)
def test_attention_order(spec: dict[str, list[tuple]], expected: list[str]) -> None:
    order = attention_order(_decisions(spec), END)
    assert list(order["brand_id"]) == expected


def test_attention_why_names_the_cause() -> None:
    order = attention_order(
        _decisions({"f-down": [(3, "demote", "FAIL", "self_broadcast", "public_traffic", 30, False), (0, *HOLD_PASS)]}),
        END,
    )
    assert order.loc[0, "why"] == "demote on 2026-03-28: self_broadcast → public_traffic; now day 20 in public_traffic"


def test_brand_chart_shows_stage_verdict_and_criteria(ledger_and_portfolio) -> None:
    ledger, _, _ = ledger_and_portfolio
    data = read_report_data(ledger)
    (panel,) = brand_charts.brand_panels(data, ["cc"], {"cc": "cc"}, {"cc": "overdue"})
    assert panel.rows == ["stage", "verdict", "gmv >= 300"]
    assert panel.grid.shape == (3, DAYS)
    # cc's gmv (10 a day: window sums 10, 20, then 30) fails gmv >= 300 every day, 90-97 % short: the two darkest reds
    evaluated = panel.grid[2][panel.grid[2] != brand_charts.NOT_EVALUATED_I]
    assert len(evaluated) == DAYS and set(evaluated) == {
        brand_charts.FAIL_0 + brand_charts.RAMP - 2,
        brand_charts.FAIL_0 + brand_charts.RAMP - 1,
    }
    assert set(panel.grid[0]) == {brand_charts.STAGE_0 + STAGE_ORDER.index("affiliate_trial")}  # it never left stage 1
    image = brand_charts.brand_image(panel, charts.day_ticks(pd.Timestamp(data.date_from), DAYS), tier=1)
    assert image.size[1] == brand_charts.TITLE_PX + 3 * brand_charts.ROW_PX + brand_charts.GAP_PX + brand_charts.AXIS_PX
    pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    for colour in (
        brand_charts.PALETTE[brand_charts.FAIL_0 + brand_charts.RAMP - 1],
        style.VERDICT_COLOURS["FAIL"] * 255,
        style.hex_rgb(style.TIER_COLOURS[1]),
    ):
        assert (
            np.abs(pixels.astype(int) - np.rint(colour)).sum(axis=1) < 4
        ).any()  # the fail cells, FAIL verdicts, the overdue label


def test_chinese_names_get_real_glyphs() -> None:
    if style.cjk_font_file() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no CJK font on CI: `apt-get install -y fonts-wqy-zenhei`")
        pytest.skip("no CJK font installed (`apt-get install -y fonts-wqy-zenhei`)")
    font = style.chart_font("cjk", 17)
    # A font without the glyphs draws the same empty box for every character; real glyphs differ.
    masks = [bytes(font.getmask(ch)) for ch in "拖后腿"]
    assert len(set(masks)) == 3 and all(any(m) for m in masks)
    assert style.title_name(LAGGARD, "cc") == f"{LAGGARD} (cc)"


def test_without_a_cjk_font_titles_fall_back_to_the_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(style, "cjk_font_file", lambda: None)
    assert style.title_name(LAGGARD, "cc") == "cc"  # no boxes in the chart; the page's heading still shows the name
    assert style.title_name("Riser", "riser") == "Riser (riser)"


def test_report_page_links_its_charts_in_attention_order(
    ledger_and_portfolio, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ledger, portfolio, _ = ledger_and_portfolio
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warnings spam (missing glyphs, fonts) while drawing
        page = write_report(portfolio, ledger, tmp_path / "rep")
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    text = page.read_text(encoding="utf-8")
    assert re.search(r'data-chart="funnel"[^>]*data-points="12"', text)
    srcs = re.findall(r'<img src="([^"]+)"', text)
    assert srcs == [
        "funnel.png",
        "stage_durations.png",
        "brand-cc.png",
        "brand-aa.png",
        "brand-bb.png",
    ]  # relative: served, copied or zipped alike
    assert all((tmp_path / "rep" / s).read_bytes().startswith(b"\x89PNG") for s in srcs)
    assert not re.search(r'(src|href)="(http|//|file:)', text)  # nothing fetched from elsewhere
    assert re.findall(r'<li class="brand"[^>]*data-brand="([^"]+)"', text) == ["cc", "aa", "bb"]
    assert f"<h3>{LAGGARD} " in text


def test_report_of_days_when_no_brand_moved(ledger_and_portfolio, tmp_path: Path) -> None:
    ledger, portfolio, _ = ledger_and_portfolio
    text = write_report(portfolio, ledger, tmp_path / "rep", date(2026, 1, 1), date(2026, 1, 2)).read_text(
        encoding="utf-8"
    )
    assert 'data-stays="0"' in text and "Stage changes: none in this range" in text


def test_cycle_report_draws_the_first_brands_and_lists_the_rest(ledger_and_portfolio, tmp_path: Path) -> None:
    ledger, portfolio, _ = ledger_and_portfolio
    text = write_report(portfolio, ledger, tmp_path / "rep", max_brands=1).read_text(encoding="utf-8")
    assert re.findall(r'<li class="brand"[^>]*data-brand="([^"]+)"', text) == ["cc"]
    assert sorted(p.name for p in (tmp_path / "rep").glob("brand-*.png")) == ["brand-cc.png"]
    assert "The other 2 brands" in text and text.index("<td>aa</td>") < text.index("<td>bb</td>")


# ---------------------------------------------------------------- the report server


@pytest.mark.parametrize(
    ("path", "status"),
    [
        pytest.param("/2026-01-12/index.html", 200, id="a-report"),
        pytest.param("/2026-01-12/", 200, id="folder-means-its-index"),
        pytest.param("/2026-01-12/index.html?x=1", 200, id="query-ignored"),
        pytest.param("/../secret.txt", 403, id="parent"),
        pytest.param("/2026-01-12/../../secret.txt", 403, id="parent-deeper"),
        pytest.param("/%2e%2e/secret.txt", 403, id="parent-percent-encoded"),
        pytest.param("/2026-01-12%2f..%2f..%2fsecret.txt", 403, id="encoded-slashes"),
        pytest.param("/..%5csecret.txt", 403, id="backslash"),
        pytest.param("/.hidden", 403, id="hidden-file"),
        pytest.param("/escape/secret.txt", 403, id="symlink-out-of-root"),
        pytest.param("/missing.html", 404, id="missing"),
        pytest.param("/empty/", 404, id="folder-without-index-no-listing"),
    ],
)
def test_resolve_request(tmp_path: Path, path: str, status: int) -> None:
    root = tmp_path / "reports"
    (root / "2026-01-12").mkdir(parents=True)
    (root / "2026-01-12" / "index.html").write_text("report", encoding="utf-8")
    (root / "empty").mkdir()
    (root / ".hidden").write_text("x", encoding="utf-8")
    (tmp_path / "secret.txt").write_text("secret", encoding="utf-8")
    (root / "escape").symlink_to(tmp_path, target_is_directory=True)
    assert resolve_request(root.resolve(), path)[0] == status


def _raw(port: int, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """A request sent exactly as written (urllib would normalise `..` away before sending it)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_server_serves_files_read_only_and_refuses_traversal(served: tuple[ReportServer, Path]) -> None:
    server, root = served
    (root / "2026-01-12").mkdir()
    (root / "2026-01-12" / "index.html").write_text("<p>拖后腿</p>", encoding="utf-8")
    (root.parent / "secret.txt").write_text("top secret", encoding="utf-8")
    status, headers, body = _raw(server.port, "GET", "/2026-01-12/index.html")
    assert (status, headers["Content-Type"], body.decode()) == (200, "text/html; charset=utf-8", "<p>拖后腿</p>")
    assert headers["X-Content-Type-Options"] == "nosniff"
    status, headers, body = _raw(server.port, "HEAD", "/2026-01-12/index.html")
    assert (status, headers["Content-Length"], body) == (200, str(len("<p>拖后腿</p>".encode())), b"")
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/2026-01-12/../../secret.txt"):
        status, _, body = _raw(server.port, "GET", path)
        assert status == 403 and b"secret" not in body
    for method in ("POST", "PUT", "DELETE"):
        status, headers, _ = _raw(server.port, method, "/2026-01-12/index.html")
        assert (status, headers["Allow"]) == (405, "GET, HEAD")
    assert (root / "2026-01-12" / "index.html").read_text(encoding="utf-8") == "<p>拖后腿</p>"


def test_report_link() -> None:
    assert (
        report_link("http://reports.example.com:4280/", date(2026, 1, 12))
        == "http://reports.example.com:4280/2026-01-12/index.html"
    )
    assert (
        report_link("https://x.example/steps", date(2026, 1, 12), "funnel.png")
        == "https://x.example/steps/2026-01-12/funnel.png"
    )


def test_base_url_names_this_machine_for_a_wildcard_address(monkeypatch: pytest.MonkeyPatch) -> None:
    import brandsteps.reports.report_server as report_server

    monkeypatch.setattr(report_server, "public_host", lambda: "steps.example.internal")
    # 0.0.0.0 in a link would send another machine's browser to itself
    assert report_server.base_url("0.0.0.0", 4280) == "http://steps.example.internal:4280"
    assert report_server.base_url("127.0.0.1", 4280) == "http://127.0.0.1:4280"
    assert report_server.base_url("::1", 4280) == "http://[::1]:4280"


def test_serve_reports_exports_the_folder_and_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import flows.serving as serving
    from brandsteps.reports.report_server import PortInUse

    for key in ("BRANDSTEPS_REPORT_DIR", "BRANDSTEPS_REPORT_URL"):
        monkeypatch.setenv(key, "before")  # restored after the test: serve_reports sets them for good
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        monkeypatch.setattr(serving, "DEFAULT_REPORT_PORT", busy)
        # the default port taken (another serve): any free port, and the URL says which
        server, url = serving.serve_reports(tmp_path / "reports", "127.0.0.1")
        try:
            assert server.port != busy and url == f"http://127.0.0.1:{server.port}"
            assert (os.environ["BRANDSTEPS_REPORT_DIR"], os.environ["BRANDSTEPS_REPORT_URL"]) == (
                str((tmp_path / "reports").resolve()),
                url,
            )
        finally:
            server.stop()
        # a port asked for must be the one
        with pytest.raises(PortInUse):
            serving.serve_reports(tmp_path / "reports", "127.0.0.1", busy)
    server, url = serving.serve_reports(tmp_path / "reports", "127.0.0.1", 0, "https://reports.example.com/steps/")
    server.stop()
    assert url == os.environ["BRANDSTEPS_REPORT_URL"] == "https://reports.example.com/steps"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        pytest.param(["--report-port", "70000"], "is not a port", id="port-too-high"),
        pytest.param(["--report-port", "web"], "is not a port", id="port-not-a-number"),
    ],
)
def test_serve_refuses_bad_report_options(args: list[str], error: str, capsys: pytest.CaptureFixture[str]) -> None:
    from brandsteps.cli import build_parser

    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["serve", *args])
    assert exit_.value.code == 2 and error in capsys.readouterr().err


def test_serve_refuses_a_report_url_that_is_not_http(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from brandsteps.cli import main

    configs = write_configs(tmp_path, {"aa": {}}, simple_playbook())
    # checked before the Prefect server is asked for or anything started
    assert main(["serve", "--configs", str(configs), "--report-url", "file:///srv/reports"]) == 2
    assert "is not an http(s) URL" in capsys.readouterr().err


# ---------------------------------------------------------------- in a browser


def _chromium(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[bytes]:
    cmd = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(cmd, check=True, timeout=120, capture_output=True, env={**os.environ, "HOME": str(tmp_path)})


def test_served_report_renders_in_headless_chromium(
    ledger_and_portfolio, served: tuple[ReportServer, Path], tmp_path: Path
) -> None:
    _need_chromium()
    server, root = served
    ledger, portfolio, _ = ledger_and_portfolio
    write_report(portfolio, ledger, root / "2026-01-12")
    url = report_link(server.url, date(2026, 1, 12))
    dom = _chromium(["--window-size=1280,2400", "--dump-dom", url], tmp_path).stdout.decode("utf-8")
    # every brand, most in need of attention first, as the ledger ranks them
    assert (
        re.findall(r'<li class="brand"[^>]*data-brand="([^"]+)"', dom)
        == list(read_overview(ledger).order["brand_id"])
        == ["cc", "aa", "bb"]
    )
    assert LAGGARD in dom  # the Chinese name as written
    srcs = re.findall(r'<img src="([^"]+)"', dom)
    assert len(srcs) == 5  # funnel, durations, three brands
    for src in srcs:  # each chart loads through the server
        with urllib.request.urlopen(urljoin(url, src), timeout=10) as response:
            assert (response.status, response.headers["Content-Type"]) == (200, "image/png")
            assert response.read(8) == b"\x89PNG\r\n\x1a\n"
    shot = tmp_path / "shot.png"
    _chromium(["--window-size=1280,2400", f"--screenshot={shot}", url], tmp_path)
    from PIL import Image

    rgb = np.asarray(Image.open(shot).convert("RGB"), dtype=int)
    assert rgb.shape == (2400, 1280, 3)
    grey = rgb.mean(axis=2)
    # A blank or error page is one flat colour; the charts give dark lines and text on white.
    assert (grey < 128).mean() > 0.005 and grey.std() > 20
    # the stacked funnel is on screen: a large patch of the first stage's colour (#4e79a7)
    funnel_blue = (np.abs(rgb - [0x4E, 0x79, 0xA7]).sum(axis=2) < 12).sum()
    assert funnel_blue > 20_000, funnel_blue


# ---------------------------------------------------------------- command line and flow


def test_cli_report(ledger_and_portfolio, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from brandsteps.cli import main

    ledger, portfolio, root = ledger_and_portfolio
    out = tmp_path / "cli"
    args = ["report", "--configs", str(portfolio.root), "--ledger", str(ledger.url)]
    assert main([*args, "--from", "2026-01-05", "--to", "2026-01-08", "--out", str(out)]) == 0
    text = (out / "index.html").read_text(encoding="utf-8")
    assert re.search(r'data-chart="funnel"[^>]*data-points="4"', text)  # 01-05 to 01-08
    assert re.findall(r'<li class="brand"[^>]*data-brand="([^"]+)"', text) == [
        "cc",
        "aa",
        "bb",
    ]  # the command draws every brand
    assert main([*args, "--from", "2026-01-08", "--to", "2026-01-05", "--out", str(out)]) == 2


async def _artifacts(flow_run_id: str) -> dict[str, dict]:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        response = await client._client.post(
            "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200, "offset": 0}
        )
        response.raise_for_status()
        return {a["key"]: a for a in response.json()}


@pytest.mark.integration
def test_cycle_links_the_served_report(prefect_server: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.onboarding_cycle import onboarding_cycle

    configs = write_configs(tmp_path, {"aa": {}, "cc": {"name": LAGGARD}}, simple_playbook())
    days = pd.date_range("2026-01-01", "2026-01-05")
    rows = [
        {"brand_id": b, "date": d.date(), "gmv": g, "orders": 5.0}
        for b, g in (("aa", 500.0), ("cc", 10.0))
        for d in days
    ]
    (tmp_path / "data").mkdir()
    pd.DataFrame(rows).to_csv(tmp_path / "data" / "metrics.csv", index=False)
    reports = tmp_path / "reports"
    server = start_report_server(reports, "127.0.0.1", 0)
    monkeypatch.setenv("BRANDSTEPS_REPORT_DIR", str(reports))
    monkeypatch.setenv("BRANDSTEPS_REPORT_URL", server.url)
    try:
        state = onboarding_cycle(as_of=date(2026, 1, 5), configs=str(configs), return_state=True)
        arts = asyncio.run(_artifacts(str(state.state_details.flow_run_id)))
        link = report_link(server.url, date(2026, 1, 5))
        assert link in arts["visual-report"]["data"]
        assert arts["visual-report-funnel"]["data"] == report_link(server.url, date(2026, 1, 5), "funnel.png")
        for target in (link, arts["visual-report-funnel"]["data"]):  # what the artifacts point at is there
            with urllib.request.urlopen(target, timeout=10) as response:
                assert response.status == 200
        # without a URL: the file link of before, and the description says how to get an http one
        monkeypatch.delenv("BRANDSTEPS_REPORT_URL")
        state = onboarding_cycle(as_of=date(2026, 1, 5), configs=str(configs), return_state=True)
        arts = asyncio.run(_artifacts(str(state.state_details.flow_run_id)))
        assert (reports / "2026-01-05" / "index.html").resolve().as_uri() in arts["visual-report"]["data"]
        assert "brandsteps serve" in arts["visual-report"]["description"] and "visual-report-funnel" not in arts

        # a report that cannot be drawn: logged, no link, and the cycle still completes (its events and reviews come after)
        def broken(*_: object, **__: object) -> None:
            raise OSError("disk full")

        monkeypatch.setattr(visual, "write_report", broken)
        state = onboarding_cycle(as_of=date(2026, 1, 5), configs=str(configs), return_state=True)
        assert state.is_completed() and "visual-report" not in asyncio.run(
            _artifacts(str(state.state_details.flow_run_id))
        )
    finally:
        server.stop()
