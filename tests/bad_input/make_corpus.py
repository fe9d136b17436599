"""Writes the bad-input corpus: one folder per case, laid over a valid project (configs/, data/metrics.csv).

Run `python tests/bad_input/make_corpus.py` after changing a case; the files are committed so each
case can be read on its own. Expected outcomes live in tests/test_bad_input.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
BRANDS = ("a", "b", "c")
DAYS = ("2026-01-01", "2026-01-02", "2026-01-03")
HEADER = "brand_id,date,gmv,orders,store_rating"


def base_rows() -> list[str]:
    """Every brand on every day: gmv 500 and 10 orders pass the simple playbook's gmv >= 300."""
    return [f"{b},{d},500,10,4.5" for b in BRANDS for d in DAYS]


def metrics_with(last_b_row: str | None = None, extra: tuple[str, ...] = (), header: str = HEADER) -> str:
    """The base table with brand b's row of 2026-01-03 (CSV line 7) replaced, plus extra rows."""
    rows = base_rows()
    if last_b_row is not None:
        rows[5] = last_b_row
    return "\n".join([header, *rows, *extra]) + "\n"


BRAND = "brand_id: {id}\nname: {name}\ntier: small\ncategory: food\nstart_date: 2026-01-01\n"

TEXT: dict[str, dict[str, str]] = {
    # ---- configs: YAML syntax and encoding
    "cfg_malformed_yaml": {"configs/brands/b.yaml": "brand_id: b\nname: [unclosed\ntier: small\n"},
    "cfg_tab_indent": {"configs/brands/b.yaml": "brand_id: b\nname: B\ngates:\n\tpublic_traffic: {}\n"},
    "cfg_duplicate_key": {"configs/brands/b.yaml": BRAND.format(id="b", name="B") + "tier: mid\n"},
    "cfg_empty_brand": {"configs/brands/b.yaml": ""},
    "cfg_only_comments": {"configs/brands/b.yaml": "# nothing here yet\n\n"},
    "cfg_empty_playbook": {"configs/steps.yaml": "   \n"},
    "cfg_list_not_mapping": {"configs/brands/b.yaml": "- brand_id: b\n- name: B\n"},
    "cfg_scalar_not_mapping": {"configs/onboarding.yaml": "just some text\n"},
    "cfg_python_tag": {"configs/brands/b.yaml": "brand_id: !!python/object/apply:os.system ['touch pwned']\nname: B\n"},
    "cfg_billion_laughs": {
        "configs/brands/b.yaml": "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
        "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nname: [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
    },
    # ---- configs: brand fields
    "cfg_unknown_brand_key": {"configs/brands/b.yaml": BRAND.format(id="b", name="B") + "colour: red\n"},
    "cfg_wrong_type_tier": {"configs/brands/b.yaml": BRAND.format(id="b", name="B").replace("tier: small", "tier: 3")},
    "cfg_bad_start_date": {"configs/brands/b.yaml": BRAND.format(id="b", name="B").replace("2026-01-01", "2026-02-30")},
    "cfg_paused_not_bool": {"configs/brands/b.yaml": BRAND.format(id="b", name="B") + "paused: maybe\n"},
    "cfg_unknown_stage": {"configs/brands/b.yaml": BRAND.format(id="b", name="B") + "stage: launch\n"},
    "cfg_override_unknown_stage": {
        "configs/brands/b.yaml": BRAND.format(id="b", name="B") + "gates:\n  launch: {window_days: 3}\n"
    },
    "cfg_approval_unknown_stage": {
        "configs/brands/b.yaml": BRAND.format(id="b", name="B") + "requires_approval: [launch]\n"
    },
    "cfg_override_unknown_metric": {
        "configs/brands/b.yaml": BRAND.format(id="b", name="B")
        + "gates:\n  affiliate_trial:\n    criteria:\n      - {metric: roi, op: '>=', threshold: 2}\n"
    },
    "cfg_override_threshold_range": {
        "configs/brands/b.yaml": BRAND.format(id="b", name="B")
        + "gates:\n  affiliate_trial:\n    criteria:\n      - {metric: refund_rate, op: '<=', threshold: 30}\n"
    },
    "cfg_brand_id_mismatch": {"configs/brands/zeta.yaml": BRAND.format(id="zed", name="Zed")},
    "cfg_duplicate_brand_id": {"configs/brands/a.yml": BRAND.format(id="a", name="A again")},
    "cfg_path_brand_id": {"configs/brands/x.yaml": BRAND.format(id='"../x"', name="X")},
    "cfg_injection_brand_id": {
        "configs/brands/evil.yaml": BRAND.format(id='"evil\'; DROP TABLE decisions; --"', name="Evil")
    },
    "cfg_uppercase_brand_id": {"configs/brands/Acme.yaml": BRAND.format(id="Acme", name="Acme")},
    "cfg_name_too_long": {"configs/brands/b.yaml": BRAND.format(id="b", name="B" * 201)},
    # ---- configs: playbook
    "cfg_stage_unknown_key": {"configs/steps.yaml": "@playbook affiliate_trial.colour=red"},
    "cfg_window_days_text": {"configs/steps.yaml": "@playbook affiliate_trial.window_days=seven"},
    "cfg_window_days_huge": {"configs/steps.yaml": "@playbook public_traffic.window_days=10000"},
    "cfg_consecutive_zero": {"configs/steps.yaml": "@playbook affiliate_trial.consecutive_passes=0"},
    "cfg_pass_score_range": {"configs/steps.yaml": "@playbook self_broadcast.pass_score=1.5"},
    "cfg_max_below_min": {"configs/steps.yaml": "@playbook affiliate_trial.max_days_in_stage=1"},
    "cfg_unknown_metric": {"configs/steps.yaml": "@playbook affiliate_trial.criteria[0].metric=roi"},
    "cfg_threshold_share_range": {
        "configs/steps.yaml": "@playbook affiliate_trial.criteria[0]={metric: refund_rate, op: '<=', threshold: 1.5}"
    },
    "cfg_threshold_negative": {"configs/steps.yaml": "@playbook affiliate_trial.criteria[0].threshold=-5"},
    "cfg_threshold_nan": {"configs/steps.yaml": "@playbook affiliate_trial.criteria[0].threshold=.nan"},
    "cfg_threshold_text": {"configs/steps.yaml": "@playbook affiliate_trial.criteria[0].threshold='300'"},
    "cfg_threshold_tier_missing": {
        "configs/steps.yaml": "@playbook affiliate_trial.criteria[0].threshold={small: 1, mid: 2}"
    },
    "cfg_bad_op": {"configs/steps.yaml": "@playbook affiliate_trial.criteria[0].op='=>'"},
    "cfg_stage_id_unknown": {"configs/steps.yaml": "@playbook private_repurchase.id=loyalty"},
    "cfg_stages_out_of_order": {"configs/steps.yaml": "@swap 0 1"},
    # ---- configs: deployment
    "cfg_password_in_yaml": {
        "configs/onboarding.yaml": "metrics: data/metrics.csv\nledger: postgresql://app:hunter2@db/ledger\n"
    },
    "cfg_metrics_password_in_yaml": {
        "configs/onboarding.yaml": "metrics: {url: 'postgresql://app:hunter2@db/metrics', table: daily}\n"
    },
    "cfg_bad_timezone": {"configs/onboarding.yaml": "metrics: data/metrics.csv\ntimezone: Mars/Olympus\n"},
    "cfg_bad_cron": {"configs/onboarding.yaml": "metrics: data/metrics.csv\nschedule: every day at nine\n"},
    "cfg_table_injection": {
        "configs/onboarding.yaml": "metrics: {url: 'sqlite:///data/m.db', table: 'daily; DROP TABLE decisions'}\n"
    },
    # ---- metrics: whole-file problems
    "met_missing_date_column": {"data/metrics.csv": "brand_id,gmv,orders\na,500,10\n"},
    "met_chinese_headers": {
        "data/metrics.csv": '日期,成交金额,成交订单数,成交人数\n2026-01-03,"¥472,278.3","13,848","11,739"\n'
    },
    "met_header_only": {"data/metrics.csv": HEADER + "\n"},
    "met_ragged_row": {"data/metrics.csv": metrics_with("b,2026-01-03,500,10,4.5,oops")},
    "met_missing_gmv_column": {
        "data/metrics.csv": "\n".join(
            ["brand_id,date,orders,store_rating", *(f"{b},{d},10,4.5" for b in BRANDS for d in DAYS)]
        )
        + "\n"
    },
    # ---- metrics: bad rows of brand b (quarantined; a and c decided normally)
    "met_text_in_number": {"data/metrics.csv": metrics_with("b,2026-01-03,abc,10,4.5")},
    "met_negative_value": {"data/metrics.csv": metrics_with("b,2026-01-03,500,-3,4.5")},
    "met_rating_above_5": {"data/metrics.csv": metrics_with("b,2026-01-03,500,10,7.5")},
    "met_duplicate_brand_day": {"data/metrics.csv": metrics_with(extra=("b,2026-01-03,450,9,4.4",))},
    "met_future_date": {"data/metrics.csv": metrics_with(extra=("b,2026-01-09,500,10,4.5",))},
    "met_nan_text": {"data/metrics.csv": metrics_with("b,2026-01-03,NaN,10,4.5")},
    "met_inf": {"data/metrics.csv": metrics_with("b,2026-01-03,inf,10,4.5")},
    "met_huge_value": {"data/metrics.csv": metrics_with("b,2026-01-03,1e15,10,4.5")},
    "met_bad_date": {"data/metrics.csv": metrics_with("b,03/01/2026,500,10,4.5")},
    "met_path_brand_id": {"data/metrics.csv": metrics_with(extra=("../x,2026-01-03,500,10,4.5",))},
    "met_injection_brand_id": {
        "data/metrics.csv": metrics_with(extra=('"a\'; DROP TABLE decisions; --",2026-01-03,500,10,4.5',))
    },
    "met_empty_brand_id": {"data/metrics.csv": metrics_with(extra=(",2026-01-03,500,10,4.5",))},
    "met_bool_in_number": {"data/metrics.csv": metrics_with("b,2026-01-03,500,true,4.5")},
    "met_several_problems": {"data/metrics.csv": metrics_with("b,2026-01-03,-1,abc,9")},
    "met_unknown_brand": {"data/metrics.csv": metrics_with(extra=("zz-unknown,2026-01-03,500,10,4.5",))},
    "met_duplicate_header": {"data/metrics.csv": metrics_with(header="brand_id,date,gmv,orders,gmv")},
    "met_thousands_separator": {"data/metrics.csv": metrics_with('b,2026-01-03,"1,500",10,4.5')},
}

# Playbook edits: "@playbook <stage>.<field path>=<YAML value>" applied to the simple playbook of
# tests/conftest.py, so each case differs from a valid playbook in exactly one place.
BINARY_CASES = (
    "cfg_gbk_brand",
    "cfg_utf16_brand",
    "met_zero_byte_parquet",
    "met_corrupt_parquet",
    "met_utf16_csv",
    "met_parquet_nan_inf",
    "met_latin1_csv",
)


def _playbook() -> dict:
    import sys

    sys.path.insert(0, str(HERE.parents[1]))
    from tests.conftest import simple_playbook

    return simple_playbook()


def _apply_playbook_edit(spec: str) -> str:
    import re

    import yaml

    book = _playbook()
    if spec.startswith("@swap"):
        _, i, j = spec.split()
        stages = book["stages"]
        stages[int(i)], stages[int(j)] = stages[int(j)], stages[int(i)]
        return yaml.safe_dump(book, sort_keys=False)
    target, _, raw = spec.removeprefix("@playbook ").partition("=")
    stage_id, _, path = target.partition(".")
    node = next(s for s in book["stages"] if s["id"] == stage_id)
    parts = re.findall(r"[a-z_]+|\[\d+\]", path)
    for part in parts[:-1]:
        node = node[int(part[1:-1])] if part.startswith("[") else node[part]
    last = parts[-1]
    value = yaml.safe_load(raw)
    if last.startswith("["):
        node[int(last[1:-1])] = value
    else:
        node[last] = value
    return yaml.safe_dump(book, sort_keys=False, allow_unicode=True)


def main() -> None:
    for old in HERE.iterdir():
        if old.is_dir():
            shutil.rmtree(old)
    for case, files in TEXT.items():
        for rel, content in files.items():
            path = HERE / case / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if content.startswith("@"):
                content = _apply_playbook_edit(content)
            path.write_text(content, encoding="utf-8")

    def put(case: str, rel: str, data: bytes) -> Path:
        path = HERE / case / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    put(
        "cfg_gbk_brand",
        "configs/brands/b.yaml",
        BRAND.format(id="b", name="山野茶社").encode("gbk") + "category: 茶\n".encode("gbk"),
    )
    put("cfg_utf16_brand", "configs/brands/b.yaml", BRAND.format(id="b", name="B").encode("utf-16"))
    put("met_zero_byte_parquet", "data/metrics.parquet", b"")
    put("met_corrupt_parquet", "data/metrics.parquet", b"PAR1 this is not really parquet")
    put("met_utf16_csv", "data/metrics.csv", metrics_with().encode("utf-16"))
    latin = "\n".join([HEADER + ",note", *(r + "," for r in base_rows()), "a,2026-01-03,500,10,4.5,café"]) + "\n"
    put("met_latin1_csv", "data/metrics.csv", latin.encode("latin-1"))
    frame = pd.DataFrame(
        {
            "brand_id": [b for b in BRANDS for _ in DAYS],
            "date": pd.to_datetime([d for _ in BRANDS for d in DAYS]),
            "gmv": [500.0] * 9,
            "orders": [10.0] * 9,
            "store_rating": [4.5] * 9,
        }
    )
    frame.loc[5, "gmv"] = float("inf")  # b on 2026-01-03
    frame.loc[4, "orders"] = float("nan")  # b on 2026-01-02: not measured, not an error
    put("met_parquet_nan_inf", "data/metrics.parquet", b"")
    frame.to_parquet(HERE / "met_parquet_nan_inf" / "data" / "metrics.parquet", index=False)


if __name__ == "__main__":
    main()
