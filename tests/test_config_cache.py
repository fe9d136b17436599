"""Config loading at portfolio scale: the parse cache, problems of many files in file order, YAML wording, one-brand loads."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

import brandsteps.config.brand_files as brand_files
import brandsteps.config.yaml_files as yaml_files
from brandsteps.config import ConfigError, cache_file, load_brand_only, load_portfolio, parse_yaml
from tests.config_helpers import APPAREL, BRANDS, cache_entries
from tests.conftest import write_configs


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("BRANDSTEPS_CACHE_DIR", str(folder))
    monkeypatch.delenv("BRANDSTEPS_CONFIG_CACHE", raising=False)
    return folder


@pytest.fixture
def parsed_files(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many brand files each load handed to the parser (0: every file came from the cache)."""
    counts: list[int] = []
    real = brand_files.parse_files

    def counting(items: list[tuple[str, bytes]], check_exact: bool) -> list[Any]:
        counts.append(len(items))
        return real(items, check_exact)

    monkeypatch.setattr(brand_files, "parse_files", counting)
    return counts


def test_cache_hit_equals_a_cold_load(tmp_path: Path, cache_dir: Path, parsed_files: list[int]) -> None:
    configs = write_configs(tmp_path, BRANDS)
    cold = load_portfolio(configs, apply_env=False, cache=False)
    first = load_portfolio(configs, apply_env=False)  # parses every file and writes the cache
    warm = load_portfolio(configs, apply_env=False)  # parses nothing
    assert parsed_files == [6, 6, 0]  # 6 brand files: parsed without cache, parsed to fill it, then none
    assert first == cold and warm == cold  # Portfolio equality: root, playbook, onboarding, brands, versions
    assert warm.brands["dated"].start_date == date(2026, 2, 28)
    assert warm.brands["texty"].name == "2026-01-05"  # still text, not a tagged date
    assert (
        warm.policy_version("apparel-a")
        == warm.policy_version("apparel-b")
        == cold.policy_version("apparel-a")
        != warm.playbook_version
    )
    # the cache holds the parsed YAML with dates tagged, under a folder named by the configs path's hash
    path = cache_file(configs.resolve())
    assert path.parent == cache_dir / ("configs-" + hashlib.sha256(str(configs.resolve()).encode()).hexdigest()[:16])
    raw = (configs / "brands" / "dated.yaml").read_bytes()
    assert cache_entries(configs)[hashlib.blake2b(raw, digest_size=16).hexdigest()]["start_date"] == {
        "$date": "2026-02-28"
    }


@pytest.mark.parametrize(
    ("old", "new", "expected_name"),
    [
        pytest.param("name: Plain", "name: Plane", "Plane", id="same-size"),  # one letter changed
        pytest.param("name: Plain", "name: Plain2", "Plain2", id="longer"),
    ],
)
def test_an_edited_file_is_parsed_again(
    tmp_path: Path, cache_dir: Path, parsed_files: list[int], old: str, new: str, expected_name: str
) -> None:
    configs = write_configs(tmp_path, BRANDS)
    load_portfolio(configs, apply_env=False)
    path = configs / "brands" / "plain.yaml"
    stat = path.stat()
    path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with the old modification time
    portfolio = load_portfolio(configs, apply_env=False)
    assert portfolio.brands["plain"].name == expected_name
    assert parsed_files == [6, 1]  # only the edited file was parsed again
    assert len(cache_entries(configs)) == 6  # the old version's entry was pruned


@pytest.mark.parametrize(
    "damage",
    [
        # a crash before os.replace cannot leave an empty file, a full disk could
        pytest.param(b"", id="empty"),
        pytest.param(b"\x00\xff garbage", id="not-text"),
        pytest.param(b'{"format": 1, "pyyaml": "6.0.3", "entries": {', id="torn"),
        pytest.param(b'{"format": 999, "pyyaml": "6.0.3", "entries": {}}', id="another-format"),
        pytest.param(b'{"format": 1, "pyyaml": "0.0.1", "entries": {}}', id="another-pyyaml"),
        pytest.param(b'{"format": 1, "pyyaml": "6.0.3", "entries": []}', id="entries-not-a-mapping"),
        pytest.param(b"[1, 2, 3]", id="not-the-layout"),
        pytest.param(b'{"format": 1, "pyyaml": "6.0.3", "entries": {"x": {"$date": "not a date"}}}', id="bad-date-tag"),
    ],
)
def test_a_corrupt_cache_is_ignored_and_rewritten(
    tmp_path: Path, cache_dir: Path, parsed_files: list[int], damage: bytes
) -> None:
    configs = write_configs(tmp_path, BRANDS)
    expected = load_portfolio(configs, apply_env=False, cache=False)
    path = cache_file(configs.resolve())
    path.parent.mkdir(parents=True)
    path.write_bytes(damage.replace(b"6.0.3", yaml.__version__.encode()))
    assert load_portfolio(configs, apply_env=False) == expected
    assert parsed_files == [6, 6]  # nothing trusted from the damaged file: all 6 parsed
    assert len(cache_entries(configs)) == 6  # and it was replaced by a good one
    assert load_portfolio(configs, apply_env=False) == expected and parsed_files == [6, 6, 0]


def test_a_wrong_entry_for_a_file_is_a_miss(tmp_path: Path, cache_dir: Path, parsed_files: list[int]) -> None:
    configs = write_configs(tmp_path, {"plain": {}})
    load_portfolio(configs, apply_env=False)
    path = cache_file(configs.resolve())
    doc = json.loads(path.read_text(encoding="ascii"))
    doc["entries"] = {k: ["not", "a", "mapping"] for k in doc["entries"]}
    path.write_text(json.dumps(doc), encoding="ascii")
    assert load_portfolio(configs, apply_env=False).brands["plain"].name == "Plain"
    assert parsed_files == [1, 1]  # the entry was not a mapping: parsed again


def test_entries_only_for_files_that_loaded_and_pruned_when_files_go(tmp_path: Path, cache_dir: Path) -> None:
    configs = write_configs(tmp_path, {"a": {}, "b": {}, "c": {}})
    (configs / "brands" / "broken.yaml").write_text("name: [unclosed\n", encoding="utf-8")
    (configs / "brands" / "wrong-tier.yaml").write_text(
        "brand_id: wrong-tier\nname: W\ntier: huge\ncategory: x\nstart_date: 2026-01-01\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError):
        load_portfolio(configs, apply_env=False)
    assert len(cache_entries(configs)) == 3  # a, b and c; neither the unparsable nor the invalid file
    for name in ("broken.yaml", "wrong-tier.yaml", "c.yaml"):
        (configs / "brands" / name).unlink()
    load_portfolio(configs, apply_env=False)
    assert len(cache_entries(configs)) == 2  # c's entry went with its file


@pytest.mark.parametrize(
    ("setting", "written"),
    [
        pytest.param("off", False, id="off"),
        pytest.param("OFF", False, id="off-in-capitals"),  # the switch ignores case
        pytest.param("on", True, id="on"),
        pytest.param("", True, id="unset"),  # on by default
    ],
)
def test_brandsteps_config_cache_switch(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch, setting: str, written: bool
) -> None:
    configs = write_configs(tmp_path, {"plain": {}})
    monkeypatch.setenv("BRANDSTEPS_CONFIG_CACHE", setting)
    load_portfolio(configs, apply_env=False)
    assert cache_file(configs.resolve()).exists() is written
    assert cache_dir.exists() is written  # off: nothing at all under the cache folder


def test_cache_dir_default_is_home_cache(tmp_path: Path) -> None:
    root = tmp_path / "configs"
    # ~/.cache/brandsteps unless BRANDSTEPS_CACHE_DIR says otherwise; one folder per resolved configs path
    assert cache_file(root, {}).parent.parent == Path.home() / ".cache" / "brandsteps"
    assert cache_file(root, {"BRANDSTEPS_CACHE_DIR": str(tmp_path / "c")}).parent.parent == tmp_path / "c"
    assert cache_file(root, {}).parent != cache_file(tmp_path / "other", {}).parent


def test_an_unwritable_cache_folder_is_not_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv("BRANDSTEPS_CACHE_DIR", str(blocker / "cache"))  # cannot be created: a file is in the way
    configs = write_configs(tmp_path, {"plain": {}})
    assert list(load_portfolio(configs, apply_env=False).brands) == ["plain"]


# ---------------------------------------------------------------- many files: every problem, in file order

BROKEN = {
    "b-dup.yaml": "brand_id: b-dup\nname: X\nname: Y\n",
    "c-tab.yaml": "a:\n\tb: 1\n",
    "d-list.yaml": "- a\n- b\n",
    "e-empty.yaml": "",
    "f-gbk.yaml": "name: 兰亭".encode("gbk") + b"\xff",
    "g-tier.yaml": "brand_id: g-tier\nname: G\ntier: huge\ncategory: food\nstart_date: 2026-01-01\n",
    # valid YAML that JSON cannot carry exactly (a set, a shared list): parsed on every load, never cached
    "x-set.yaml": "brand_id: x-set\nname: X\ntier: mid\ncategory: food\nstart_date: 2026-01-01\nrequires_approval: !!set {public_traffic: null}\n",
    "z-alias.yaml": "x: &a [1, 2]\ny: *a\n",
}


def _portfolio_with_broken_files(tmp_path: Path) -> Path:
    configs = write_configs(tmp_path, {f"ok-{i:02d}": (APPAREL if i % 3 == 0 else {}) for i in range(12)})
    for name, text in BROKEN.items():
        path = configs / "brands" / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return configs


@pytest.mark.parametrize("cache", [pytest.param(False, id="parsed"), pytest.param(True, id="through-the-cache")])
def test_every_problem_of_many_files_in_file_name_order(tmp_path: Path, cache_dir: Path, cache: bool) -> None:
    configs = _portfolio_with_broken_files(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_portfolio(configs, apply_env=False, cache=cache)
    # every problem in file-name order, one reason each (x-set is valid: pydantic takes a set for a list)
    B = "configs/brands"
    assert info.value.problems == [
        f"{B}/b-dup.yaml: invalid YAML (line 3, column 1): duplicate key 'name'",
        f"{B}/c-tab.yaml: invalid YAML (line 2, column 1): found character that cannot start any token; indent with spaces, not tabs",
        f"{B}/d-list.yaml: must be a mapping of keys to values, not a list",
        f"{B}/e-empty.yaml: the file is empty",
        f"{B}/f-gbk.yaml: not UTF-8 text (byte 6); save the file as UTF-8",  # "name: " is bytes 0-5
        f"{B}/g-tier.yaml: tier: must be one of 'small', 'mid' or 'large' (got 'huge')",
        *(
            f"{B}/z-alias.yaml: {field}: is required"
            for field in ("brand_id", "name", "tier", "category", "start_date")
        ),
        f"{B}/z-alias.yaml: x: unknown key",
        f"{B}/z-alias.yaml: y: unknown key",
    ]


def test_cached_loads_equal_an_uncached_one(tmp_path: Path, cache_dir: Path, parsed_files: list[int]) -> None:
    configs = write_configs(
        tmp_path, {**BRANDS, **{f"more-{i:02d}": {"start_date": date(2026, 3, i + 1)} for i in range(10)}}
    )
    (configs / "brands" / "set-approval.yaml").write_text(
        "brand_id: set-approval\nname: S\ntier: mid\ncategory: food\nstart_date: 2026-01-01\nrequires_approval: !!set {public_traffic: null}\n",
        encoding="utf-8",
    )
    uncached = load_portfolio(configs, apply_env=False, cache=False)
    assert load_portfolio(configs, apply_env=False) == uncached  # parses every file, filling the cache
    assert load_portfolio(configs, apply_env=False) == uncached  # from the cache
    # 17 files: every one parsed twice (without, then into the cache); then only set-approval, whose set
    # does not survive JSON, so it is never cached: 16 entries
    assert parsed_files == [17, 17, 1]
    assert len(cache_entries(configs)) == 16


# ---------------------------------------------------------------- YAML problems in PyYAML's words, with hints


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        # a mapping's keys are all checked before its values are built: the outer duplicate is named
        pytest.param(
            "a: 1\nb: {x: 1, x: 2}\na: 2\n",
            "x.yaml: invalid YAML (line 3, column 1): duplicate key 'a'",
            id="outer-duplicate-first",
        ),
        # keys are compared as YAML reads them: 1 and 1.0 are one key, the later one is named as read
        pytest.param(
            "a: 1\n1: 3\n1.0: 4\n",
            "x.yaml: invalid YAML (line 3, column 1): duplicate key 1.0",
            id="duplicate-number-key",
        ),
        # << would merge another mapping in: no tags, so it is refused like one
        pytest.param(
            "a: 1\n<<: {b: 2}\n",
            "x.yaml: invalid YAML (line 2, column 1): tag '!!merge' is not allowed (configs are plain YAML: no tags, nothing is executed)",
            id="merge-key",
        ),
        pytest.param(
            "a: !!python/object/apply:os.system ['true']\n",
            "x.yaml: invalid YAML (line 1, column 4): tag '!!python/object/apply:os.system' is not allowed (configs are plain YAML: no tags, nothing is executed)",
            id="python-tag",
        ),
        # a list as a key: PyYAML's words, not a TypeError traceback
        pytest.param("? [a, b]\n: 1\n", "x.yaml: invalid YAML (line 1, column 3): found unhashable key", id="list-key"),
        pytest.param(
            "a: 1\n---\nb: 2\n",
            "x.yaml: invalid YAML (line 2, column 1): but found another document",
            id="two-documents",
        ),
    ],
)
def test_yaml_problems_in_pyyaml_words(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_yaml(text.encode("utf-8"), "x.yaml")
    assert info.value.problems == [problem]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # aliases share one object, as PyYAML builds them
        pytest.param("a: &x {k: v}\nb: *x\n", "{'a': {'k': 'v'}, 'b': {'k': 'v'}}", id="alias"),
        # 2026-02-30 is no date: kept as text, so the field's own check words the problem
        pytest.param(
            "d: 2026-02-30\nt: 2026-01-05\n", "{'d': '2026-02-30', 't': datetime.date(2026, 1, 5)}", id="dates"
        ),
        pytest.param("x: !!str 2026-01-01\ny: '7'\n", "{'x': '2026-01-01', 'y': '7'}", id="text-that-looks-typed"),
    ],
)
def test_plain_yaml_reads_as_pyyaml_safe_load_does(text: str, expected: str) -> None:
    assert repr(parse_yaml(text.encode("utf-8"), "x.yaml")) == expected


# ---------------------------------------------------------------- one brand only (explain)


@pytest.mark.parametrize(
    "brand_id",
    [
        pytest.param("plain", id="no-overrides"),
        pytest.param("apparel-b", id="shared-overrides"),  # its policy version is apparel-a's too
        pytest.param("approving", id="approval-only"),
    ],
)
def test_load_brand_only_equals_the_full_load_for_that_brand(tmp_path: Path, brand_id: str) -> None:
    configs = write_configs(tmp_path, BRANDS)
    full = load_portfolio(configs, apply_env=False)
    one = load_brand_only(configs, brand_id, apply_env=False)
    assert list(one.brands) == [brand_id]
    assert one.brands[brand_id] == full.brands[brand_id]
    assert one.policy_version(brand_id) == full.policy_version(brand_id)  # what explain shows next to the decision
    assert (one.playbook, one.onboarding, one.playbook_version, one.root) == (
        full.playbook,
        full.onboarding,
        full.playbook_version,
        full.root,
    )


def test_load_brand_only_reads_three_files(tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    configs = write_configs(tmp_path, BRANDS)
    (configs / "brands" / "zz-broken.yaml").write_text("tier: [\n", encoding="utf-8")  # a full load would fail on it
    read: list[str] = []
    real = yaml_files.read_bytes

    def recording(path: Path | str, display: str) -> bytes:
        read.append(display)
        return real(path, display)

    monkeypatch.setattr(yaml_files, "read_bytes", recording)  # steps.yaml and onboarding.yaml
    monkeypatch.setattr(brand_files, "read_bytes", recording)  # brand files
    assert list(load_brand_only(configs, "texty", apply_env=False).brands) == ["texty"]
    assert read == ["configs/steps.yaml", "configs/onboarding.yaml", "configs/brands/texty.yaml"]
    assert not cache_dir.exists()  # the parse cache is neither read nor written for one file


@pytest.mark.parametrize(
    ("brand_id", "files", "expected"),
    [
        pytest.param("nobody", {}, [], id="no-file"),  # no brand (explain says "unknown brand")
        pytest.param("../configs/steps", {}, [], id="path"),  # not a slug: no path is built from it
        pytest.param("Acme", {}, [], id="capitals"),  # not a slug either
        # both spellings: the full load's problem, from the second file in name order
        pytest.param(
            "twice",
            {"twice.yaml": "twice", "twice.yml": "twice"},
            ["configs/brands/twice.yml: brand_id: 'twice' is defined twice"],
            id="yaml-and-yml",
        ),
    ],
)
def test_load_brand_only_edge_cases(tmp_path: Path, brand_id: str, files: dict[str, str], expected: list[str]) -> None:
    configs = write_configs(tmp_path, {})
    for name, bid in files.items():
        (configs / "brands" / name).write_text(
            f"brand_id: {bid}\nname: T\ntier: mid\ncategory: food\nstart_date: 2026-01-01\n", encoding="utf-8"
        )
    if expected:
        with pytest.raises(ConfigError) as info:
            load_brand_only(configs, brand_id, apply_env=False)
        assert info.value.problems == expected
        with pytest.raises(ConfigError) as full:
            load_portfolio(configs, apply_env=False)
        assert full.value.problems == expected
    else:
        assert load_brand_only(configs, brand_id, apply_env=False).brands == {}


@pytest.mark.parametrize(
    ("collector_on", "broken"),
    [
        pytest.param(True, False, id="on-stays-on"),
        # a refused folder raises out of the load: the collector is switched back on all the same
        pytest.param(True, True, id="on-again-after-a-refused-folder"),
        # a caller that switched it off itself (a benchmark, an embedding app) finds it off still
        pytest.param(False, False, id="off-stays-off"),
    ],
)
def test_the_cycle_collector_pauses_only_while_brand_files_load(
    tmp_path: Path, cache_dir: Path, collector_on: bool, broken: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    configs = write_configs(tmp_path, BRANDS)
    if broken:
        (configs / "brands" / "zz-broken.yaml").write_text("brand_id: [\n", encoding="utf-8")
    seen: list[bool] = []
    real = brand_files.parse_files

    def watching(items: list[tuple[str, bytes]], check_exact: bool) -> list[Any]:
        seen.append(gc.isenabled())
        return real(items, check_exact)

    monkeypatch.setattr(brand_files, "parse_files", watching)
    was = gc.isenabled()
    (gc.enable if collector_on else gc.disable)()
    try:
        if broken:
            with pytest.raises(ConfigError):
                load_portfolio(configs, apply_env=False)
        else:
            load_portfolio(configs, apply_env=False)
        after = gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()
    assert seen == [False]  # the parser ran once (an empty cache: every file), with the collector paused
    assert after is collector_on
