"""Config loading at portfolio scale: the parse cache, parallel parsing, the fast YAML pass, one-brand loads."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

import brandsteps.config as config
from brandsteps.config import ConfigError, cache_file, load_brand_only, load_portfolio, parse_yaml
from tests.conftest import write_configs

APPAREL = {
    "gates": {
        "affiliate_trial": {"criteria": [{"metric": "refund_rate", "op": "<=", "threshold": 0.6}], "on_fail": "exit"}
    }
}
# Brands that exercise what JSON must carry exactly: dates, date-like text, Chinese text, overrides, approvals.
BRANDS: dict[str, dict[str, Any]] = {
    "plain": {},
    "dated": {"start_date": date(2026, 2, 28)},  # an unquoted YAML date (a text one would be quoted)
    "texty": {"name": "2026-01-05", "owner": "王敏"},  # quoted in the file: text that only looks like a date
    "apparel-a": APPAREL,
    "apparel-b": APPAREL,  # the same overrides: one shared validation and policy version
    "approving": {"requires_approval": ["public_traffic"], "paused": True},
}


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
    real = config._parse_files

    def counting(items: list[tuple[str, bytes]], check_exact: bool, parallel_min: int) -> list[Any]:
        counts.append(len(items))
        return real(items, check_exact, parallel_min)

    monkeypatch.setattr(config, "_parse_files", counting)
    return counts


def _entries(configs: Path) -> dict[str, Any]:
    return json.loads(cache_file(configs.resolve()).read_text(encoding="ascii"))["entries"]


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
    assert _entries(configs)[hashlib.blake2b(raw, digest_size=16).hexdigest()]["start_date"] == {"$date": "2026-02-28"}


@pytest.mark.parametrize(
    ("old", "new", "expected_name"),
    [
        ("name: Plain", "name: Plane", "Plane"),  # same size, one letter changed
        ("name: Plain", "name: Plain2", "Plain2"),  # a longer file
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
    assert len(_entries(configs)) == 6  # the old version's entry was pruned


@pytest.mark.parametrize(
    "damage",
    [
        b"",  # empty (a crash before os.replace cannot do this, a full disk could)
        b"\x00\xff garbage",  # not JSON, not even text
        b'{"format": 1, "pyyaml": "6.0.3", "entries": {',  # torn
        b'{"format": 999, "pyyaml": "6.0.3", "entries": {}}',  # another format version
        b'{"format": 1, "pyyaml": "0.0.1", "entries": {}}',  # written with another PyYAML
        b'{"format": 1, "pyyaml": "6.0.3", "entries": []}',  # entries not a mapping
        b"[1, 2, 3]",  # JSON, but not the cache's layout
        b'{"format": 1, "pyyaml": "6.0.3", "entries": {"x": {"$date": "not a date"}}}',  # a broken date tag
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
    assert len(_entries(configs)) == 6  # and it was replaced by a good one
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
    assert len(_entries(configs)) == 3  # a, b and c; neither the unparsable nor the invalid file
    for name in ("broken.yaml", "wrong-tier.yaml", "c.yaml"):
        (configs / "brands" / name).unlink()
    load_portfolio(configs, apply_env=False)
    assert len(_entries(configs)) == 2  # c's entry went with its file


@pytest.mark.parametrize(("setting", "written"), [("off", False), ("OFF", False), ("on", True), ("", True)])
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


# ---------------------------------------------------------------- parallel parsing

BROKEN = {
    "b-dup.yaml": "brand_id: b-dup\nname: X\nname: Y\n",
    "c-tab.yaml": "a:\n\tb: 1\n",
    "d-list.yaml": "- a\n- b\n",
    "e-empty.yaml": "",
    "f-gbk.yaml": "name: 兰亭".encode("gbk") + b"\xff",
    "g-tier.yaml": "brand_id: g-tier\nname: G\ntier: huge\ncategory: food\nstart_date: 2026-01-01\n",
    # valid YAML that JSON cannot carry back from a worker (a shared list, a set): the caller parses them itself
    "x-set.yaml": "brand_id: x-set\nname: X\ntier: mid\ncategory: food\nstart_date: 2026-01-01\nrequires_approval: !!set {public_traffic: null}\n",
    "z-alias.yaml": "x: &a [1, 2]\ny: *a\n",
}


def _portfolio_with_broken_files(tmp_path: Path) -> Path:
    configs = write_configs(tmp_path, {f"ok-{i:02d}": (APPAREL if i % 3 == 0 else {}) for i in range(12)})
    for name, text in BROKEN.items():
        path = configs / "brands" / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return configs


def test_parallel_parse_reports_exactly_what_a_serial_parse_does(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configs = _portfolio_with_broken_files(tmp_path)
    with pytest.raises(ConfigError) as serial:
        load_portfolio(configs, apply_env=False, cache=False, parallel_min=10**9)
    monkeypatch.setattr(config, "_cpu_count", lambda: 3)  # this process and two workers, whatever the machine
    in_this_process: list[int] = []
    real_chunk = config._parse_chunk
    monkeypatch.setattr(
        config, "_parse_chunk", lambda items, check: in_this_process.append(len(items)) or real_chunk(items, check)
    )
    with pytest.raises(ConfigError) as parallel:
        load_portfolio(configs, apply_env=False, cache=False, parallel_min=2)
    # 20 files in shares weighted 1.25 : 1 : 1, i.e. 8, 6 and 6: this process parsed its 8 and the two files
    # (x-set, z-alias, last in name order) that JSON cannot carry back from a worker; the workers did the rest
    assert in_this_process == [8, 1, 1]
    assert parallel.value.problems == serial.value.problems
    # every problem in file-name order, in the words of a serial load (x-set is valid: pydantic takes a set for a list)
    B = "configs/brands"
    assert serial.value.problems == [
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


def test_parallel_and_cached_loads_equal_a_serial_one(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configs = write_configs(
        tmp_path, {**BRANDS, **{f"more-{i:02d}": {"start_date": date(2026, 3, i + 1)} for i in range(10)}}
    )
    (configs / "brands" / "set-approval.yaml").write_text(
        "brand_id: set-approval\nname: S\ntier: mid\ncategory: food\nstart_date: 2026-01-01\nrequires_approval: !!set {public_traffic: null}\n",
        encoding="utf-8",
    )
    serial = load_portfolio(configs, apply_env=False, cache=False, parallel_min=10**9)
    monkeypatch.setattr(config, "_cpu_count", lambda: 2)
    assert load_portfolio(configs, apply_env=False, parallel_min=2) == serial  # parallel, filling the cache
    assert load_portfolio(configs, apply_env=False, parallel_min=2) == serial  # from the cache
    assert (
        len(_entries(configs)) == 16
    )  # every brand but set-approval: a set does not survive JSON, so it is parsed every time


# ---------------------------------------------------------------- the fast YAML pass

REFERENCE_CASES = [
    "a: 1\nb: [x, 2.5, true, null, 2026-01-05]\nc: {d: e}\n",
    "a: &x {k: v}\nb: *x\nc: [*x, *x]\n",  # aliases share one object
    "a: 1\nb: {x: 1, x: 2}\na: 2\n",  # two duplicates: the reference pass names the outer one first (keys before values)
    "a: {x: 1, x: 2}\nb: {y: 1, y: 2}\n",
    "a: 1\n<<: {b: 2}\n",  # a merge key: refused as a tag
    "a: 1\n=: 2\n",  # a value key: refused as a tag
    "? [a, b]\n: 1\n",  # an unhashable key
    "s: !!set {a: null, b: null}\no: !!omap [{a: 1}, {b: 2}]\np: !!pairs [{a: 1}]\nbin: !!binary aGk=\n",
    "d: 2026-02-30\nt: 2026-01-05 10:00:00\ne: .inf\nn: .nan\n",
    "a: !!python/object/apply:os.system ['true']\n",
    "a: &r [*r]\n",  # a recursive list
    "a: &r {b: *r}\n",  # a recursive mapping: unconstructable
    "- 1\n- 2\n",
    "plain text\n",
    "x: !!str 2026-01-01\ny: !!int '7'\nz: '2026-01-01'\n",
]


def _outcome(text: str) -> tuple[str, Any]:
    try:
        return "data", repr(parse_yaml(text.encode("utf-8"), "x.yaml"))
    except ConfigError as exc:
        return "problems", exc.problems
    except Exception as exc:  # any other outcome must be the same too
        return type(exc).__name__, str(exc)


@pytest.mark.parametrize("text", REFERENCE_CASES)
def test_fast_pass_gives_the_reference_outcome(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _outcome(text)
    monkeypatch.setattr(config._UniqueKeyLoader, "_reference", True)  # every document built the reference way only
    assert fast == _outcome(text)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        # the reference order: a mapping's keys are all checked before its values are built
        ("a: 1\nb: {x: 1, x: 2}\na: 2\n", "x.yaml: invalid YAML (line 3, column 1): duplicate key 'a'"),
        (
            "a: 1\n<<: {b: 2}\n",
            "x.yaml: invalid YAML (line 2, column 1): tag '!!merge' is not allowed (configs are plain YAML: no tags, nothing is executed)",
        ),
        (
            "? [a, b]\n: 1\n",
            "x.yaml: invalid YAML (line 1, column 3): found unhashable key",
        ),  # was a TypeError traceback
    ],
)
def test_yaml_problems_in_reference_words(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_yaml(text.encode("utf-8"), "x.yaml")
    assert info.value.problems == [problem]


# ---------------------------------------------------------------- one brand only (explain)


@pytest.mark.parametrize("brand_id", ["plain", "apparel-b", "approving"])
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
    real = config._read_bytes
    monkeypatch.setattr(config, "_read_bytes", lambda path, display: read.append(display) or real(path, display))
    assert list(load_brand_only(configs, "texty", apply_env=False).brands) == ["texty"]
    assert read == ["configs/steps.yaml", "configs/onboarding.yaml", "configs/brands/texty.yaml"]
    assert not cache_dir.exists()  # the parse cache is neither read nor written for one file


@pytest.mark.parametrize(
    ("brand_id", "files", "expected"),
    [
        ("nobody", {}, []),  # no file: no brand (explain says "unknown brand")
        ("../configs/steps", {}, []),  # not a slug: no path is built from it
        ("Acme", {}, []),
        # both spellings: the full load's problem, from the second file in name order
        (
            "twice",
            {"twice.yaml": "twice", "twice.yml": "twice"},
            ["configs/brands/twice.yml: brand_id: 'twice' is defined twice"],
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
