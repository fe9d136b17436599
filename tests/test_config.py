"""Config loading: valid portfolios, every error naming file, field and reason, schemas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from brandsteps.config import ConfigError, effective_stage, load_portfolio, write_json_schemas
from tests.conftest import REPO, write_configs

REPO_SCHEMAS = REPO / "schemas"


def test_repository_configs_are_valid() -> None:
    p = load_portfolio(REPO / "configs", apply_env=False)
    assert [s.id for s in p.playbook.stages] == [
        "affiliate_trial",
        "public_traffic",
        "self_broadcast",
        "private_repurchase",
        "channel_exclusive",
    ]
    assert all(s.criteria and s.actions for s in p.playbook.stages)


def problems(tmp_path: Path, brand: dict, name: str = "acme") -> list[str]:
    write_configs(tmp_path, {})
    (tmp_path / "configs" / "brands" / f"{name}.yaml").write_text(
        yaml.safe_dump(brand, allow_unicode=True), encoding="utf-8"
    )
    with pytest.raises(ConfigError) as info:
        load_portfolio(tmp_path / "configs", apply_env=False)
    return info.value.problems


BASE = {"brand_id": "acme", "name": "Acme", "tier": "small", "category": "food", "start_date": "2026-01-01"}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"tier": "huge"}, "configs/brands/acme.yaml: tier: must be one of 'small', 'mid' or 'large' (got 'huge')"),
        ({"colour": "red"}, "configs/brands/acme.yaml: colour: unknown key"),
        ({"brand_id": "other"}, "configs/brands/acme.yaml: brand_id: 'other' must equal the file name 'acme'"),
        (
            {"brand_id": "../x"},
            "configs/brands/acme.yaml: brand_id: must be a slug of lowercase letters, digits and dashes",
        ),
        ({"stage": "launch"}, "configs/brands/acme.yaml: stage: must be one of"),
        ({"start_date": "soon"}, "configs/brands/acme.yaml: start_date: must be a date like 2026-01-31"),
        (
            {
                "gates": {
                    "public_traffic": {
                        "criteria": [
                            {"metric": "paid_roi", "op": ">=", "threshold": 1},
                            {"metric": "paid_roi", "op": ">=", "threshold": "x"},
                        ]
                    }
                }
            },
            "configs/brands/acme.yaml: gates.public_traffic.criteria[1].threshold: must be a number or a map {small, mid, large} of numbers",
        ),
        (
            {"gates": {"public_traffic": {"criteria": [{"metric": "roi", "op": ">=", "threshold": 1}]}}},
            "gates.public_traffic.criteria[0].metric: unknown metric 'roi'",
        ),
        (
            {"gates": {"public_traffic": {"criteria": [{"metric": "refund_rate", "op": "<=", "threshold": 30}]}}},
            "threshold 30 is out of range for refund_rate (a share is at most 1)",
        ),
        ({"gates": {"launch": {}}}, "configs/brands/acme.yaml: gates.launch: "),
        (
            {
                "gates": {
                    "public_traffic": {"criteria": [{"metric": "gmv", "op": ">=", "threshold": {"small": 1, "mid": 2}}]}
                }
            },
            "a tier map needs exactly small, mid and large (missing large)",
        ),
    ],
)
def test_brand_errors_name_file_field_and_reason(tmp_path: Path, change: dict, expected: str) -> None:
    found = problems(tmp_path, {**BASE, **change})
    assert any(expected in p for p in found), found


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "brand_id: acme\nbrand_id: acme\n",
            "configs/brands/acme.yaml: invalid YAML (line 2, column 1): duplicate key 'brand_id'",
        ),
        ("a:\n\tb: 1\n", "indent with spaces, not tabs"),
        ("", "configs/brands/acme.yaml: the file is empty"),
        ("- a\n- b\n", "configs/brands/acme.yaml: must be a mapping of keys to values, not a list"),
        ("name: [unclosed\n", "configs/brands/acme.yaml: invalid YAML"),
    ],
)
def test_yaml_errors(tmp_path: Path, text: str, expected: str) -> None:
    write_configs(tmp_path, {})
    (tmp_path / "configs" / "brands" / "acme.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_portfolio(tmp_path / "configs", apply_env=False)
    assert any(expected in p for p in info.value.problems), info.value.problems


def test_a_problem_spelling_tab_inside_a_word_gets_no_tabs_hint(tmp_path: Path) -> None:
    # PyYAML's "found unconstructable recursive node" holds the letters t-a-b, not the word: no advice on tabs
    write_configs(tmp_path, {})
    (tmp_path / "configs" / "brands" / "acme.yaml").write_text("a: &r {b: *r}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_portfolio(tmp_path / "configs", apply_env=False)
    assert info.value.problems == [
        "configs/brands/acme.yaml: invalid YAML (line 1, column 4): found unconstructable recursive node"
    ]


def test_non_utf8_file(tmp_path: Path) -> None:
    write_configs(tmp_path, {})
    (tmp_path / "configs" / "brands" / "acme.yaml").write_bytes("name: 兰亭女装".encode("gbk") + b"\xff")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_portfolio(tmp_path / "configs", apply_env=False)


def test_playbook_needs_five_stages_in_order(tmp_path: Path) -> None:
    playbook = yaml.safe_load((REPO / "configs" / "steps.yaml").read_text(encoding="utf-8"))
    playbook["stages"] = playbook["stages"][::-1]
    write_configs(tmp_path, {}, playbook=playbook)
    with pytest.raises(ConfigError, match="configs/steps.yaml: stages: must list the five stages in order"):
        load_portfolio(tmp_path / "configs", apply_env=False)


def test_password_never_sits_in_yaml(tmp_path: Path) -> None:
    write_configs(tmp_path, {}, onboarding={"ledger": "postgresql://app:s3cret@db/ledger"})
    with pytest.raises(ConfigError) as info:
        load_portfolio(tmp_path / "configs", apply_env=False)
    assert "s3cret" not in str(info.value) and "ledger: must not contain a password" in str(info.value)


def test_overrides_replace_criteria_by_metric_and_change_the_policy_version(tmp_path: Path) -> None:
    override = {
        "gates": {
            "affiliate_trial": {
                "criteria": [{"metric": "refund_rate", "op": "<=", "threshold": 0.6}],
                "on_fail": "exit",
            }
        }
    }
    write_configs(tmp_path, {"plain": {}, "apparel": override})
    p = load_portfolio(tmp_path / "configs", apply_env=False)
    stage = effective_stage(p.playbook.stage("affiliate_trial"), p.brands["apparel"])
    refund = [c for c in stage.criteria if c.metric == "refund_rate"]
    assert len(refund) == 1 and refund[0].threshold == 0.6  # replaced, not added
    assert len(stage.criteria) == len(p.playbook.stage("affiliate_trial").criteria)
    assert stage.on_fail == "exit"
    assert p.policy_version("plain") == p.playbook_version != p.policy_version("apparel")


def test_environment_overrides_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_configs(tmp_path, {})
    monkeypatch.setenv("BRANDSTEPS_LEDGER", "sqlite:////tmp/elsewhere.sqlite")
    monkeypatch.setenv("BRANDSTEPS_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ConfigError, match="environment: timezone: unknown timezone 'Mars/Olympus'"):
        load_portfolio(tmp_path / "configs")
    monkeypatch.setenv("BRANDSTEPS_TIMEZONE", "UTC")
    assert load_portfolio(tmp_path / "configs").onboarding.ledger == "sqlite:////tmp/elsewhere.sqlite"


def test_json_schemas_are_written(tmp_path: Path) -> None:
    paths = write_json_schemas(tmp_path)
    names = sorted(p.name for p in paths)
    assert names == [
        "approvers.schema.json",
        "brand.schema.json",
        "import-profile.schema.json",
        "onboarding.schema.json",
        "steps.schema.json",
    ]
    brand = json.loads((tmp_path / "brand.schema.json").read_text())
    assert brand["additionalProperties"] is False and "tier" in brand["required"]


def test_committed_schemas_are_the_models(tmp_path: Path) -> None:
    # editors read schemas/*.schema.json: a model change without `brandsteps schema` would leave them checking old keys
    for path in write_json_schemas(tmp_path):
        assert (REPO_SCHEMAS / path.name).read_text(encoding="utf-8") == path.read_text(encoding="utf-8"), (
            f"run `brandsteps schema`: {path.name}"
        )
