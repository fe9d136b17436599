"""A ledger's every table as sorted rows: equal dumps mean an input left the ledger exactly as it was."""

from __future__ import annotations

import sqlalchemy as sa

from brandsteps.ledger import Ledger, metadata


def ledger_dump(ledger: Ledger) -> dict[str, list[tuple]]:
    with ledger.engine.connect() as conn:
        return {t.name: sorted(map(tuple, conn.execute(sa.select(t)).all()), key=repr) for t in metadata.sorted_tables}
