"""Tests of the demo's export rendering (brandsteps.demo_exports); the exports' round trip is in test_demo_data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from brandsteps.demo_exports import USER_PROFILES, _count, _money, _wan, remove_old_exports, split_whole
from brandsteps.imports import BUILTIN_PROFILES, ImportProfile
from brandsteps.kuaishou import parse_kuaishou_series


def _sums_in_every_order(part: np.ndarray, group: np.ndarray, n: int) -> list[np.ndarray]:
    """The groups' sums as readers add them: in order, backwards, pairwise (numpy, pandas' sorted groups) and compensated."""
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    forward, backward = np.zeros(n), np.zeros(n)
    for i in range(len(part)):  # a reference loop over a few hundred rows
        forward[group[i]] += part[i]
        backward[group[-1 - i]] += part[-1 - i]
    return [forward, backward, np.add.reduceat(part, starts), pd.Series(part).groupby(group).sum().to_numpy()]


@pytest.mark.parametrize(
    "least",
    [
        pytest.param(1, id="at-least-one-per-row"),  # per-item sales: every SKU on sale sold something
        pytest.param(0, id="rows-may-get-nothing"),  # 快分销 预估佣金 (分): a 达人 may earn nothing
    ],
)
def test_split_whole_adds_up_to_the_total_in_any_order(least: int) -> None:
    rng = np.random.default_rng(3)
    size = rng.integers(1, 12, 40)
    group = np.repeat(np.arange(40), size)
    total = np.floor(rng.lognormal(6, 2, 40)) + size  # at least one unit per row
    part = split_whole(total, group, rng.pareto(1.5, len(group)) + 0.05, least)
    assert (part == np.floor(part)).all() and (part >= least).all()
    # Whole numbers add up exactly whatever the order, so whole yuan read back give the total however the reader
    # adds them (fen would not: 0.1 + 0.2 != 0.3, and pandas adds a sorted group pairwise).
    for sums in _sums_in_every_order(part, group, 40):
        assert np.array_equal(sums, total)


def test_split_whole_gives_back_what_the_floors_took() -> None:
    # 5 units over 4 rows with one row weighing almost everything: the floors (1 each) leave the last row its 1
    part = split_whole(np.array([5.0]), np.zeros(4, dtype=np.int64), np.array([100.0, 0.01, 0.01, 0.01]), 1)
    assert part.tolist() == [2.0, 1.0, 1.0, 1.0]


def test_cells_read_back_as_the_same_floats() -> None:
    # Exports write money to the fen and counts whole: the Kuaishou parser gives back the very floats written.
    rng = np.random.default_rng(5)
    money = np.round(rng.lognormal(7, 3, 20_000), 2)
    counts = np.rint(rng.lognormal(7, 3, 20_000))
    for cells, values in ((_money(money, "¥"), money), (_money(money, "￥"), money), (_count(counts), counts), (_wan(counts), counts)):
        parsed, invalid = parse_kuaishou_series(pd.Series(cells, dtype=object))
        assert not invalid.any() and np.array_equal(parsed.to_numpy(), values)
    assert _wan(np.array([123_456.0, 120_000.0, 9_999.0])).tolist() == ["12.3456万", "12万", "9,999"]
    assert _money(np.array([1234.5, np.nan]), "¥").tolist() == ["¥1,234.50", "-"]  # not measured: '-', never 0


def test_user_profiles_are_valid_and_named_apart_from_the_built_ins() -> None:
    for name, text in USER_PROFILES.items():
        ImportProfile.model_validate(yaml.safe_load(text))
        assert name not in BUILTIN_PROFILES


def test_remove_old_exports_only_takes_the_demos_files(tmp_path: Path) -> None:
    (tmp_path / "全店成交分析").mkdir()
    old = [tmp_path / "全店成交分析" / "d051-muyu-home_全店成交分析_20260101-20260301.csv", tmp_path / "磁力金牛_账户报表_20260101-20260301.csv"]
    kept = [tmp_path / "磁力金牛-7月.csv", tmp_path / "全店成交分析" / "my-own-export.csv"]  # an operator's own files
    for path in (*old, *kept):
        path.write_text("x", encoding="utf-8")
    remove_old_exports(tmp_path)
    assert not any(p.exists() for p in old) and all(p.exists() for p in kept)
