"""The visual report: an HTML page and PNG charts (stage funnel, stage durations, brands by need of attention).

`data` reads the ledger, `attention` ranks the brands, `charts` and `brand_charts` draw, `page` writes it all.
"""

from __future__ import annotations

from brandsteps.reports.visual.page import write_report

__all__ = ["write_report"]
