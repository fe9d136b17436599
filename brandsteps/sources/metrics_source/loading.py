"""Load the metrics for a cycle: read the source, validate its rows, and name the source in any error."""

from __future__ import annotations

from datetime import date

from brandsteps.sources.metrics_source.model import MetricsBatch, MetricsReadError, MetricsSource
from brandsteps.sources.metrics_source.reading import read_raw
from brandsteps.sources.metrics_source.validation import validate

# Headers of a Kuaishou 生意通 export: fed in directly, they need `brandsteps import-kuaishou` first.
_KUAISHOU_HINTS = ("成交金额", "成交订单数", "日期", "商品曝光次数")


def load_metrics(source: MetricsSource, *, as_of: date, today: date, start: date | None = None) -> MetricsBatch:
    """Read and validate the rows from start (if given) up to as_of."""
    raw, sources, all_columns = read_raw(source, start, as_of)
    try:
        # consume: raw's columns go as the valid frame takes them (one copy of 3.5M rows, not two)
        batch = validate(raw, as_of=as_of, today=today, start=start, all_columns=all_columns, consume=True)
    except MetricsReadError as exc:
        hint = ""
        if any(h in str(c) for c in all_columns for h in _KUAISHOU_HINTS):
            hint = (
                " (this looks like a Kuaishou 生意通 export: "
                "convert it with `brandsteps import-kuaishou FILE --brand ID`)"
            )
        raise MetricsReadError(f"{', '.join(sources)}: {exc}{hint}") from None
    batch.sources = sources
    return batch
