"""`brandsteps import`: per-file summary, --out a new table, into the configured metrics, exit 2 on a bad file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from brandsteps.cli import main
from tests.conftest import write_configs
from tests.imports_helpers import FIXTURES

JINNIU = FIXTURES / "cililiujin_accounts_gbk.csv"
ITEMS = FIXTURES / "items_daily.xlsx"


def _write_configs(root: Path) -> Path:
    tea = {"accounts": ["1001", "ks_tea2"], "exclusive_items": ["5001", "5002"]}
    brands = {"shanye-tea": tea, "yunqi-beauty": {"accounts": [2002]}}
    return write_configs(root, brands)


@pytest.fixture
def configs(tmp_path: Path) -> Iterator[Path]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    # no server, whatever ran before: these tests read what the command says of files (announcing is tested below)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        yield _write_configs(tmp_path)


def test_out_writes_a_new_table(configs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "imported.csv"
    assert main(["import", str(JINNIU), "--configs", str(configs), "--out", str(out)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{JINNIU}: cililiujin-accounts: 2 brands × 2 days × 2 columns (ad_spend, ad_gmv), 4 brand-days",
        "  skipped 2 rows of 1 account no brand lists in `accounts`:",
        "    9999: 2 rows, 2025-07-01 to 2025-07-02",
        f"wrote 4 rows to {out}",
    ]
    # whole numbers as whole numbers; '-' stays empty (not measured)
    assert out.read_text(encoding="utf-8").splitlines() == [
        "brand_id,date,ad_spend,ad_gmv",
        "shanye-tea,2025-07-01,1300,3451.25",
        "shanye-tea,2025-07-02,800,",
        "yunqi-beauty,2025-07-01,12000,30000.0",
        "yunqi-beauty,2025-07-02,9000,27000.3",
    ]


def test_out_combines_files_by_brand_and_day(configs: Path, tmp_path: Path) -> None:
    out = tmp_path / "imported.parquet"
    assert main(["import", str(ITEMS), "--brand", "shanye-tea", "--configs", str(configs), "--out", str(out)]) == 0
    rows = pd.read_parquet(out)
    # one row per brand-day; the items file's columns beside nothing else
    assert rows[["gmv_exclusive", "exclusive_skus"]].to_numpy().tolist() == [[1000.5, 1.0], [999.9, 2.0], [0.0, 0.0]]


def test_a_bad_file_stores_nothing(configs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "imported.csv"
    bad = FIXTURES / "cililiujin_bad_cell.csv"
    unknown = FIXTURES / "xiaodiantong_unknown.csv"
    assert main(["import", str(JINNIU), str(bad), str(unknown), "--configs", str(configs), "--out", str(out)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"brandsteps: {bad}: row 4, 总花费(元): cannot read '1,2x0' as a number",
        f"{unknown}: no import profile matches its header row (tried: kuaishou-store-daily, kuaishou-store-accounts, cililiujin-accounts, "
        "kuaifenxiao-effect, kuaishou-items-daily); name one with --profile, or describe the file in configs/imports/<name>.yaml",
    ]
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["--brand", "Shanye Tea"],
            "brandsteps: --brand 'Shanye Tea' is not a brand id (lowercase letters, digits and -)",
            id="brand-not-a-slug",
        ),
        pytest.param(
            ["--out", "x.xlsx"],
            "brandsteps: --out x.xlsx: use a .csv or .parquet file name",
            id="out-not-csv-or-parquet",
        ),
    ],
)
def test_usage_errors(configs: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", str(JINNIU), "--configs", str(configs), *argv]) == 2
    assert capsys.readouterr().err.strip() == message


def test_into_the_configured_metrics(configs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    metrics = tmp_path / "data" / "metrics.csv"
    assert main(["import", str(JINNIU), "--configs", str(configs), "--metrics", str(metrics)]) == 0
    stored = pd.read_csv(metrics)
    assert stored[["brand_id", "date", "ad_spend"]].to_numpy().tolist() == [
        ["shanye-tea", "2025-07-01", 1300.0],
        ["shanye-tea", "2025-07-02", 800.0],
        ["yunqi-beauty", "2025-07-01", 12000.0],
        ["yunqi-beauty", "2025-07-02", 9000.0],
    ]
    assert (
        f"{JINNIU}: cililiujin-accounts: 2 brands × 2 days × 2 columns (ad_spend, ad_gmv), 4 brand-days"
        in capsys.readouterr().out
    )


def test_a_file_that_cannot_be_stored_is_reported_and_the_others_are_stored(
    configs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics = tmp_path / "data" / "metrics"
    metrics.mkdir(parents=True)
    for name in ("a.csv", "b.csv"):  # shanye-tea 2025-07-01 twice: which copy to restate cannot be told
        (metrics / name).write_text("brand_id,date,gmv\nshanye-tea,2025-07-01,5\n", encoding="utf-8")
    accounts = FIXTURES / "store_accounts_20250705.xlsx"  # shanye-tea on 2025-07-05 only

    assert (
        main(
            [
                "import",
                str(JINNIU),
                str(accounts),
                "--brand",
                "shanye-tea",
                "--configs",
                str(configs),
                "--metrics",
                str(metrics),
            ]
        )
        == 2
    )

    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == f"{accounts}: 1 brand × 1 day × 1 column; 1 new brand-day, 0 values restated"
    assert err.splitlines() == [
        f"brandsteps: {JINNIU}: {metrics} already holds shanye-tea on 2025-07-01 ({metrics}/a.csv row 2, {metrics}/b.csv row 2) more than once: "
        "nothing written (the metrics reader quarantines every copy; keep one and import again)",
        "1 of 2 files not stored; the others were stored",
    ]
    stored = pd.read_parquet(metrics / "imported" / "shanye-tea.parquet")
    assert stored[["brand_id", "date", "active_affiliates"]].astype(object).to_numpy().tolist() == [
        ["shanye-tea", pd.Timestamp("2025-07-05"), 2.0]
    ]


def test_an_import_is_announced_to_the_prefect_server(
    prefect_server: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With a Prefect API, the brands and days a command stored are announced as the inbox does (for the cycle)."""
    from prefect.client.orchestration import get_client

    from tests.prefect_process import wait_for

    configs = _write_configs(tmp_path)
    assert main(["import", str(JINNIU), "--configs", str(configs), "--metrics", str(tmp_path / "metrics.csv")]) == 0
    assert capsys.readouterr().err.splitlines()[-1] == "announced brandsteps.metrics.imported: 2 brands, 2 days"

    def announced() -> list[dict[str, object]]:
        with get_client(sync_client=True) as client:
            wanted = {"event": {"name": ["brandsteps.metrics.imported"]}, "resource": {"id": ["brandsteps.metrics"]}}
            body = {"filter": wanted, "limit": 50}
            events = client._client.post("/events/filter", json=body).json()["events"]
        return [e for e in events if e["payload"]["files"] == [str(JINNIU)]]

    (event,) = wait_for("the imported event", announced, timeout=30)
    # the account report's two brands and two days, as the onboarding-cycle trigger's automations see them
    changed = (event["payload"]["brands"], event["payload"]["days"])
    assert changed == (["shanye-tea", "yunqi-beauty"], ["2025-07-01", "2025-07-02"])
    # the same file again stores nothing new: nothing to announce, no cycle started for it
    assert main(["import", str(JINNIU), "--configs", str(configs), "--metrics", str(tmp_path / "metrics.csv")]) == 0
    assert "announced" not in capsys.readouterr().err
