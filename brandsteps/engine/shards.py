"""Splitting a portfolio into shards by a stable hash of brand_id, and merging the shards' cycles."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd

from brandsteps.config import Portfolio
from brandsteps.engine.cycle import CycleSummary, count_decisions, count_statuses, funnel


def shard_of(brand_ids: list[str] | pd.Index, count: int) -> np.ndarray:
    """Each brand's shard in [0, count).

    The same on every machine and run: pandas' fixed-key hash, not Python's salted one.
    """
    if count < 1:
        raise ValueError(f"shards must be at least 1 (got {count})")
    hashes = pd.util.hash_array(np.asarray(list(brand_ids), dtype=object))
    return (hashes % np.uint64(count)).astype(int)


def shard_portfolio(portfolio: Portfolio, index: int, count: int) -> Portfolio:
    """The portfolio narrowed to one shard's brands (configs, playbook and versions unchanged)."""
    if not 0 <= index < count:
        raise ValueError(f"shard_index must be in 0..{count - 1} (got {index})")
    ids = list(portfolio.brands)
    mine = {b for b, s in zip(ids, shard_of(ids, count), strict=True) if s == index}
    return replace(
        portfolio,
        brands={b: v for b, v in portfolio.brands.items() if b in mine},
        brand_versions={b: v for b, v in portfolio.brand_versions.items() if b in mine},
    )


def merged_summary(
    as_of: date, cohorts: pd.DataFrame, decisions: pd.DataFrame, shard_cycles: pd.DataFrame
) -> CycleSummary:
    """The portfolio's summary from the shards' ledger records, read back after every shard finished.

    cohorts: every brand's state after the shards (prepare_cohorts on the ledger), decisions: the
    ledger's decisions for as_of, shard_cycles: the shards' rows of the cycles table.
    """
    summary = CycleSummary(as_of=as_of, decided=int(shard_cycles["decided"].sum()) if len(shard_cycles) else 0)
    summary.already_decided = max(0, count_statuses(summary, cohorts) - summary.decided)
    count_decisions(summary, decisions)
    summary.funnel = funnel(
        cohorts, pd.DataFrame()
    )  # cohorts read after the shards already stand where decisions put them
    # every shard validates the whole metrics table, so each saw the same quarantined rows
    summary.quarantined_rows = int(shard_cycles["quarantined"].max()) if len(shard_cycles) else 0
    return summary
