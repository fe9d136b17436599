"""The brand roster behind `status`: the listing of a full load, with unchanged files not read again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from brandsteps.config import ConfigError, load_portfolio
from brandsteps.reports.roster import BrandListing, load_roster, roster_file
from tests.config_helpers import BRANDS, cache_entries
from tests.conftest import write_configs


@pytest.fixture
def configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BRANDSTEPS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("BRANDSTEPS_CONFIG_CACHE", raising=False)
    return write_configs(tmp_path, BRANDS)


def _listing_of_full_load(configs: Path) -> list[BrandListing]:
    portfolio = load_portfolio(configs, apply_env=False, cache=False)
    return [
        BrandListing(b.brand_id, b.name, b.tier, b.owner, b.stage, b.start_date.isoformat(), b.paused)
        for b in sorted(portfolio.brands.values(), key=lambda b: b.brand_id)
    ]


def _edit(configs: Path, brand_id: str, **changes: object) -> None:
    path = configs / "brands" / f"{brand_id}.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    path.write_text(yaml.safe_dump({**doc, **changes}, allow_unicode=True), encoding="utf-8")


def test_roster_lists_what_a_full_load_validates_and_then_reads_no_file(configs: Path) -> None:
    first = load_roster(configs, apply_env=False)
    again = load_roster(configs, apply_env=False)
    # the six BRANDS, dates as ISO text, "texty"'s date-like name still text, "approving" paused
    assert first.brands == again.brands == _listing_of_full_load(configs)
    assert (first.files_read, again.files_read) == (6, 0)  # the second load trusts the roster for every unchanged file


@pytest.mark.parametrize(
    ("change", "expected_read", "expected_ids"),
    [
        # one file edited: only that one is read again, and its new owner shows
        pytest.param("edit", 1, ["apparel-a", "apparel-b", "approving", "dated", "plain", "texty"], id="edit"),
        # a new brand file: only it is read
        pytest.param("add", 1, ["apparel-a", "apparel-b", "approving", "dated", "new-one", "plain", "texty"], id="add"),
        # a file removed: nothing to read, and the brand is gone
        pytest.param("remove", 0, ["apparel-a", "apparel-b", "approving", "dated", "texty"], id="remove"),
        # the playbook changed: a brand's overrides may no longer be valid, so every file is read
        pytest.param("playbook", 6, ["apparel-a", "apparel-b", "approving", "dated", "plain", "texty"], id="playbook"),
    ],
)
def test_roster_reads_only_what_changed(
    configs: Path, change: str, expected_read: int, expected_ids: list[str]
) -> None:
    load_roster(configs, apply_env=False)
    if change == "edit":
        _edit(configs, "plain", owner="李雷")
    elif change == "add":
        (configs / "brands" / "new-one.yaml").write_text(
            "brand_id: new-one\nname: New\ntier: small\ncategory: food\nstart_date: 2026-03-01\n", encoding="utf-8"
        )
    elif change == "remove":
        (configs / "brands" / "plain.yaml").unlink()
    else:
        with (configs / "steps.yaml").open("a", encoding="utf-8") as handle:
            handle.write("\n# reviewed\n")
    roster = load_roster(configs, apply_env=False)
    assert roster.files_read == expected_read
    assert [b.brand_id for b in roster.brands] == expected_ids
    assert roster.brands == _listing_of_full_load(configs)  # whatever changed, the same listing as a full load


def test_an_edit_that_keeps_size_and_modification_time_is_still_seen(configs: Path) -> None:
    load_roster(configs, apply_env=False)
    path = configs / "brands" / "plain.yaml"
    before = path.stat()
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("name: Plain", "name: Plaim"), encoding="utf-8")  # same length
    os.utime(
        path, ns=(before.st_atime_ns, before.st_mtime_ns)
    )  # modification time set back, as `touch -r` or a sync tool does
    assert path.stat().st_size == before.st_size and path.stat().st_mtime_ns == before.st_mtime_ns
    roster = load_roster(configs, apply_env=False)
    # the change time moved (it cannot be set back), so the file is read again
    assert (roster.files_read, roster.brands[4].name) == (1, "Plaim")


def test_an_invalid_file_is_reported_on_every_load(configs: Path) -> None:
    load_roster(configs, apply_env=False)
    _edit(configs, "plain", tier="giant")
    for _ in range(2):  # never entered in the roster: the second load reads it and reports it again
        with pytest.raises(ConfigError) as err:
            load_roster(configs, apply_env=False)
        assert err.value.problems[0].startswith("configs/brands/plain.yaml: tier:")


def test_a_brand_in_two_files_is_reported_even_when_one_was_listed(configs: Path) -> None:
    load_roster(configs, apply_env=False)
    (configs / "brands" / "plain.yml").write_bytes((configs / "brands" / "plain.yaml").read_bytes())
    with pytest.raises(ConfigError) as err:
        load_roster(configs, apply_env=False)
    assert err.value.problems == ["configs/brands/plain.yml: brand_id: 'plain' is defined twice"]


@pytest.mark.parametrize(
    "switch", [pytest.param("argument", id="argument"), pytest.param("environment", id="environment")]
)
def test_roster_off_reads_every_file_and_writes_nothing(
    configs: Path, monkeypatch: pytest.MonkeyPatch, switch: str
) -> None:
    if switch == "environment":
        monkeypatch.setenv("BRANDSTEPS_CONFIG_CACHE", "off")
    for _ in range(2):
        roster = load_roster(configs, apply_env=False, cache=False if switch == "argument" else None)
        assert roster.files_read == 6
    assert not roster_file(configs.resolve()).exists()


def test_a_torn_roster_file_is_rebuilt(configs: Path) -> None:
    load_roster(configs, apply_env=False)
    path = roster_file(configs.resolve())
    path.write_bytes(path.read_bytes()[:40])
    roster = load_roster(configs, apply_env=False)
    assert (roster.files_read, roster.brands) == (6, _listing_of_full_load(configs))
    assert load_roster(configs, apply_env=False).files_read == 0  # and written again whole


def test_roster_keeps_the_cycles_parse_cache(configs: Path) -> None:

    load_portfolio(configs, apply_env=False)  # a cycle's load: every file in the parse cache
    before = cache_entries(configs)
    load_roster(configs, apply_env=False)  # reads every file (no roster yet): all six from the parse cache
    _edit(configs, "plain", owner="李雷")
    load_roster(configs, apply_env=False)  # reads the edited file only
    after = cache_entries(configs)
    # nothing pruned (a one-file read must not empty the cache the next cycle needs), the edit added
    assert before.keys() < after.keys() and len(after) == 7
