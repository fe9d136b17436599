"""Brands' accounts and exclusive_items (docs/domain.md#accounts-and-items): validated, each account one brand's."""

from __future__ import annotations

from pathlib import Path

import pytest

from brandsteps.cli import main
from brandsteps.config import ConfigError, load_portfolio
from tests.conftest import write_configs
from tests.imports_helpers import write_profile


def test_accounts_and_items_are_read_as_text(tmp_path: Path) -> None:
    configs = write_configs(tmp_path, {"a": {"accounts": [1001, " ks_ａ "], "exclusive_items": [5001]}})
    a = load_portfolio(configs, apply_env=False).brands["a"]
    # YAML reads 1001 as a number: an id is its digits; fullwidth letters and spaces as the importer reads cells
    assert (a.accounts, a.exclusive_items) == (["1001", "ks_a"], ["5001"])


@pytest.mark.parametrize(
    ("brands", "expected"),
    [
        pytest.param(
            {"a": {"accounts": ["1001", "ks_shared"]}, "b": {"accounts": ["ks_shared"]}},
            [
                "configs/brands/b.yaml: accounts: 'ks_shared' is also listed by configs/brands/a.yaml (an account belongs to one brand)"
            ],
            id="account-in-two-brands",
        ),
        pytest.param(
            {"a": {"accounts": ["1001", 1001]}},
            ["configs/brands/a.yaml: accounts: lists '1001' twice"],
            id="account-twice-in-one-brand",
        ),
        pytest.param(
            {"a": {"exclusive_items": [""]}},
            ["configs/brands/a.yaml: exclusive_items[0]: must not be empty"],
            id="empty-item-id",
        ),
        pytest.param(
            {"a": {"accounts": "1001"}},
            ["configs/brands/a.yaml: accounts: must be a list"],
            id="accounts-not-a-list",
        ),
    ],
)
def test_bad_accounts(tmp_path: Path, brands: dict, expected: list[str]) -> None:
    configs = write_configs(tmp_path, brands)
    with pytest.raises(ConfigError) as info:
        load_portfolio(configs, apply_env=False)
    assert info.value.problems == expected


def test_validate_reports_brands_and_profiles_together(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    configs = write_configs(tmp_path, {"a": {"accounts": ["7"]}, "b": {"accounts": ["7"]}})
    write_profile(
        configs, "live", {"match": ["日期"], "columns": {"live_minutes": {"header": "时长", "unit": "minutes"}}}
    )
    assert main(["validate", "--configs", str(configs)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "2 configuration problem(s):",
        "  configs/brands/b.yaml: accounts: '7' is also listed by configs/brands/a.yaml (an account belongs to one brand)",
        "  configs/imports/live.yaml: columns.live_minutes.unit: must be one of yuan, fen, li, second, minute, hour, count (got 'minutes')",
    ]


def test_validate_counts_the_profiles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    configs = write_configs(tmp_path, {"a": {}})
    write_profile(configs, "live", {"match": ["日期"], "columns": {"live_minutes": {"header": "时长"}}})
    assert main(["validate", "--configs", str(configs)]) == 0
    assert capsys.readouterr().out.splitlines()[1] == f"import profiles: 5 built-in, 1 in {configs}/imports: live"
