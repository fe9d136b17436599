"""Store what `brandsteps import-kuaishou` read: as a new file, or as rows added to the configured metrics."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from brandsteps.catalogue import BASE_COLUMNS
from brandsteps.sources.kuaishou.cells import KuaishouFormatError
from brandsteps.sources.kuaishou.reader import KuaishouExport, PeriodRecord, read_kuaishou_export, to_metrics_rows
from brandsteps.sources.metrics_source import MetricsSource

__all__ = [
    "KuaishouImport",
    "append_to_source",
    "import_kuaishou",
    "periods_frame",
    "periods_path",
    "write_atomically",
    "write_new_table",
    "write_periods",
]


@dataclass
class KuaishouImport:
    """What `brandsteps import-kuaishou` read: daily rows, period records, and what each file had or lacked."""

    brand_id: str
    rows: pd.DataFrame  # brand_id, date, then the base columns the files have
    periods: list[PeriodRecord]
    exports: list[KuaishouExport]

    @property
    def not_measured(self) -> list[str]:
        """Base columns no file carries: left missing (not measured), never filled with 0."""
        have = set(self.rows.columns) | {c for p in self.periods for c in p.totals}
        return [c for c in BASE_COLUMNS if c not in have]

    def summary_lines(self) -> list[str]:
        out = []
        for e in self.exports:
            what = (
                f"period {e.period[0]} to {e.period[1]} (kept as one period record)"
                if e.period
                else f"{0 if e.daily is None else len(e.daily)} days"
            )
            out.append(f"{e.source}: {what}")
            if e.unknown_columns:
                out.append(f"  unknown columns, not imported: {', '.join(e.unknown_columns)}")
            out += [f"  warning: {w}" for w in e.warnings]
        if len(self.rows):
            first, last = self.rows["date"].min(), self.rows["date"].max()
            out.append(f"{len(self.rows)} daily rows for {self.brand_id} from {first:%Y-%m-%d} to {last:%Y-%m-%d}")
        out.append(f"not measured (left missing, never 0): {', '.join(self.not_measured) or 'none'}")
        return out


def import_kuaishou(paths: list[Path], brand_id: str) -> KuaishouImport:
    """Read every export; errors of all files are reported together, each naming its file."""
    exports: list[KuaishouExport] = []
    problems: list[str] = []
    for p in paths:
        try:
            exports.append(read_kuaishou_export(Path(p)))
        except KuaishouFormatError as exc:
            problems.append(str(exc))
        except FileNotFoundError:
            problems.append(f"{p}: no such file")
    if problems:
        raise KuaishouFormatError("\n".join(problems))
    rows, periods = to_metrics_rows(exports, brand_id)
    rows["date"] = pd.to_datetime(rows["date"])
    return KuaishouImport(brand_id, rows, periods, exports)


def periods_frame(periods: list[PeriodRecord]) -> pd.DataFrame:
    """Period records as a table: brand, first and last day, number of days, source, then the totals."""
    totals = pd.DataFrame.from_records(
        [p.totals for p in periods], columns=[c for c in BASE_COLUMNS if any(c in p.totals for p in periods)]
    )
    head = pd.DataFrame(
        {
            "brand_id": [p.brand_id for p in periods],
            "start": [p.start.isoformat() for p in periods],
            "end": [p.end.isoformat() for p in periods],
            "days": [(p.end - p.start).days + 1 for p in periods],
            "source": [str(p.source) for p in periods],
        }
    )
    return pd.concat([head, totals], axis=1)


def periods_path(target: Path) -> Path:
    """Where period records go beside a metrics file or folder: never a .csv/.parquet a metrics folder would read."""
    return target.with_name(target.name.split(".")[0] + ".periods.jsonl")


def _for_csv(rows: pd.DataFrame) -> pd.DataFrame:
    out = rows.copy()
    out["date"] = pd.to_datetime(out["date"]).dt.strftime("%Y-%m-%d")
    for c in out.columns[2:]:  # counts stay counts: 402, not 402.0
        col = out[c]
        if pd.api.types.is_float_dtype(col) and bool(((col.dropna() % 1) == 0).all()):
            out[c] = col.astype("Int64")
    return out


def write_atomically(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    if path.suffix.lower() == ".csv":
        _for_csv(frame).to_csv(tmp, index=False, encoding="utf-8")
    else:
        frame.to_parquet(tmp, index=False)
    tmp.replace(path)


def write_periods(periods: list[PeriodRecord], path: Path) -> int:
    """Append period records (JSON lines) to path, refusing a brand/period already recorded there."""
    if not periods:
        return 0
    new = periods_frame(periods)
    if path.exists():
        old = pd.read_json(path, lines=True, dtype={"start": str, "end": str})
        if len(old):
            clash = new.merge(old[["brand_id", "start", "end"]].astype(str), on=["brand_id", "start", "end"])
            if len(clash):
                shown = ", ".join(clash["start"] + " to " + clash["end"])
                raise KuaishouFormatError(
                    f"{path}: already has period records for {new['brand_id'].iloc[0]} for {shown}: nothing written"
                )
    path.parent.mkdir(parents=True, exist_ok=True)
    records = new.astype(object).where(new.notna(), None).to_dict("records")
    with path.open("a", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)  # a few periods per import
    return len(new)


def write_new_table(result: KuaishouImport, out: Path) -> list[str]:
    """--out FILE: a new CSV or Parquet file (by extension) of the daily rows; periods beside it."""
    suffix = out.suffix.lower()
    if suffix not in {".csv", ".parquet", ".pq"}:
        raise KuaishouFormatError(f"--out {out}: use a .csv or .parquet file name")
    if out.exists():
        raise KuaishouFormatError(
            f"--out {out}: the file exists; choose a new name (to add rows to the configured metrics, leave out --out)"
        )
    lines = []
    if len(result.rows):
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(result.rows, out)
        lines.append(f"wrote {len(result.rows)} rows to {out}")
    if result.periods:
        lines.append(_record_periods(result, out))
    return lines


def _record_periods(result: KuaishouImport, beside: Path) -> str:
    """Period totals go to their own file next to the daily rows, never spread over days."""
    target = periods_path(beside)
    write_periods(result.periods, target)
    return f"recorded {len(result.periods)} period(s) in {target} (not spread over days)"


def _clash_message(where: str, brand_id: str, days: pd.Series) -> str:
    shown = ", ".join(pd.to_datetime(days).dt.strftime("%Y-%m-%d").head(10))
    more = f" and {len(days) - 10} more" if len(days) > 10 else ""
    return (
        f"{where} already has rows for {brand_id} on {shown}{more}: "
        "nothing written (remove those days from the exports or from the metrics first)"
    )


def append_to_source(result: KuaishouImport, source: MetricsSource) -> list[str]:
    """Add the rows to the configured metrics (file, folder or SQL table), refusing brand/days it already has."""
    rows = result.rows
    lines: list[str] = []
    if len(rows):
        existing = _existing_days(source, result.brand_id)
        clash = rows["date"][rows["date"].isin(existing)]
        if len(clash):
            raise KuaishouFormatError(_clash_message(source.describe(), result.brand_id, clash))
    if source.url is not None:
        if len(rows):
            _insert_sql(rows, source)
            lines.append(f"added {len(rows)} rows to {source.describe()}")
        if result.periods:
            raise KuaishouFormatError(
                f"{source.describe()}: period files cannot go into an SQL metrics source yet; use --out FILE"
            )
        return lines
    assert source.path is not None
    path = source.path
    if len(rows):
        if path.is_dir() or not path.suffix:
            path.mkdir(parents=True, exist_ok=True)
            first, last = rows["date"].min(), rows["date"].max()
            target = path / f"kuaishou-{result.brand_id}-{first:%Y%m%d}-{last:%Y%m%d}.parquet"
            n = 2
            while target.exists():
                target = path / f"kuaishou-{result.brand_id}-{first:%Y%m%d}-{last:%Y%m%d}-{n}.parquet"
                n += 1
            write_atomically(rows, target)
            lines.append(f"added {len(rows)} rows to {path} as {target.name}")
        else:
            _append_file(rows, path)
            lines.append(f"added {len(rows)} rows to {path}")
    if result.periods:
        lines.append(_record_periods(result, path))
    return lines


def _existing_days(source: MetricsSource, brand_id: str) -> pd.Series:
    from brandsteps.sources.metrics_source import read_raw

    if source.path is not None and not source.path.exists():
        return pd.Series([], dtype="datetime64[ns]")
    try:
        raw, _, _ = read_raw(source)
    except Exception as exc:  # MetricsReadError for a missing table and the like
        if source.url is not None and "not found" in str(exc):
            return pd.Series([], dtype="datetime64[ns]")
        raise
    mine = raw[raw["brand_id"].astype("string").str.strip() == brand_id]
    return pd.to_datetime(mine["date"], errors="coerce").dt.normalize().dropna()


def _append_file(rows: pd.DataFrame, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        old = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        new = _for_csv(rows).astype("string").fillna("")
        _write_atomically_text(pd.concat([old, new], ignore_index=True).fillna(""), path)
    elif suffix in {".parquet", ".pq"}:
        old = pd.read_parquet(path)
        new = rows.copy()
        if "date" in old and not pd.api.types.is_datetime64_any_dtype(old["date"]):
            new["date"] = (
                new["date"].dt.strftime("%Y-%m-%d")
                if pd.api.types.is_string_dtype(old["date"])
                else new["date"].dt.date
            )
        write_atomically(pd.concat([old, new], ignore_index=True), path)
    else:
        raise KuaishouFormatError(f"{path}: the configured metrics file must be .csv or .parquet to add rows to it")


def _write_atomically_text(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_csv(tmp, index=False, encoding="utf-8")
    tmp.replace(path)


def _insert_sql(rows: pd.DataFrame, source: MetricsSource) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(source.url or "")
    try:
        schema, _, name = source.table.rpartition(".")
        try:
            table = sa.Table(name, sa.MetaData(), autoload_with=engine, schema=schema or None)
        except sa.exc.NoSuchTableError:
            raise KuaishouFormatError(f"table {source.table!r} not found in the metrics database") from None
        lacking = [c for c in rows.columns if c not in table.c]
        if lacking:
            raise KuaishouFormatError(f"{source.describe()}: the table has no column {', '.join(lacking)}")
        out = rows.copy()
        out["date"] = out["date"].dt.date
        records = [
            {str(k): v for k, v in r.items()} for r in out.astype(object).where(out.notna(), None).to_dict("records")
        ]
        with engine.begin() as conn:
            conn.execute(table.insert(), records)  # bound parameters only
    finally:
        engine.dispose()
