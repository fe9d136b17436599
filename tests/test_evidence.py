"""Tests of the evidence arrays and their rendering as the ledger's JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import brandsteps.engine.evidence as evidence_module
from brandsteps.engine.evidence import (
    FAIL_,
    NO_VALUE,
    PASS_,
    Decided,
    Evidence,
    combine,
    criteria_json,
    fmt,
    fmt_repeated,
    ints_text,
    json_members,
    per_distinct,
    render,
    text_frame,
)


def _evidence(
    rows: list[int], values: list[float], results: list[int], thresholds: list[float] | None = None
) -> Evidence:
    n = len(rows)
    text = lambda v: np.array([v] * n, dtype=object)  # noqa: E731 - one constant column
    return Evidence.of(
        row=np.array(rows, dtype=np.int64),
        role=text("criterion"),
        source_stage=text("public_traffic"),
        metric=text("roi"),
        op=text(">="),
        threshold=np.array(thresholds or [1.5] * n),
        kind=text("must"),
        weight=np.ones(n),
        shadow=np.zeros(n, dtype=bool),
        value=np.array(values),
        result=np.array(results, dtype=np.int64),
    )


@pytest.mark.parametrize(
    ("value", "result", "reason"),
    [
        pytest.param(2.0, PASS_, "roi 2 >= 1.5", id="pass"),  # the relation holds: the op as configured
        pytest.param(1.2, FAIL_, "roi 1.2 < 1.5", id="fail"),  # it does not: the negated op says why
        pytest.param(float("nan"), NO_VALUE, "roi has no value", id="no-value"),
        # large numbers get thousands separators, no decimals
        pytest.param(123456.7, PASS_, "roi 123,457 >= 1.5", id="thousands"),
    ],
)
def test_reasons(value: float, result: int, reason: str) -> None:
    assert list(_evidence([0], [value], [result]).reasons()) == [reason]


def test_guardrail_and_shadow_reasons_name_their_role() -> None:
    ev = _evidence([0, 0], [1.0, 1.0], [FAIL_, FAIL_])
    ev = Evidence.of(
        **{
            **{
                k: getattr(ev, k)
                for k in ("row", "source_stage", "metric", "op", "threshold", "kind", "weight", "value", "result")
            },
            "role": np.array(["guardrail", "criterion"], dtype=object),
            "shadow": np.array([False, True]),
        }
    )
    assert list(ev.reasons()) == ["guardrail public_traffic: roi 1 < 1.5", "shadow roi 1 < 1.5"]


def test_per_distinct_builds_what_each_row_would_build() -> None:
    # texts are built once per distinct combination of streak, need and score, then shared by the rows
    streak, need, score = np.array([2, 1, 2, 0]), np.array([3, 3, 3, 1]), np.array([0.5, np.nan, 0.5, 1.0])

    def build(s: np.ndarray, k: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.asarray("PASS " + ints_text(s) + " of " + ints_text(k) + " score " + fmt(x), dtype=object)

    assert per_distinct(build, streak, need, score).tolist() == [
        "PASS 2 of 3 score 0.5",
        "PASS 1 of 3 score n/a",
        "PASS 2 of 3 score 0.5",
        "PASS 0 of 1 score 1",
    ]


def test_fmt_repeated_equals_fmt() -> None:
    values = np.array([0.3, 1.5, 0.3, np.nan, 20000.0, 1.5])
    assert list(fmt_repeated(values)) == list(fmt(values)) == ["0.3", "1.5", "0.3", "n/a", "20,000", "1.5"]


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        pytest.param(["a", "b"], ['"t":"a"', '"t":"b"'], id="plain-texts"),
        # a text holding the separator between objects: pandas' own line splitter takes over
        pytest.param(["x},{y", "b"], ['"t":"x},{y"', '"t":"b"'], id="text-holding-the-separator"),
        # and a line separator in the same text: JSON leaves U+2028 unescaped, records still end only at "\n"
        pytest.param(["x\u2028y},{z", "b"], ['"t":"x\u2028y},{z"', '"t":"b"'], id="separator-and-unicode-line-break"),
    ],
)
def test_json_members(texts: list[str], expected: list[str]) -> None:
    assert json_members(pd.DataFrame({"t": pd.Series(texts, dtype=object)})) == expected


def test_criteria_json_in_chunks_equals_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    # 7 decisions with 0..3 criteria each; chunks of 4 criteria must never split a decision
    rows = [0, 0, 1, 2, 2, 2, 4, 5, 5, 6]
    ev = _evidence(rows, [float(i) for i in range(len(rows))], [PASS_] * len(rows))
    whole = criteria_json(ev, 7)
    monkeypatch.setattr(evidence_module, "RENDER_CHUNK", 4)
    assert list(criteria_json(ev, 7)) == list(whole)
    assert whole[3] == "[]"  # decision 3 had no criteria
    assert [len(json.loads(t)) for t in whole] == [2, 1, 3, 0, 1, 2, 1]


def test_combine_shifts_criteria_to_their_decisions() -> None:
    def part(ids: list[str], rows: list[int]) -> Decided:
        frame = pd.DataFrame({"brand_id": ids, "stage": "public_traffic"})
        factors = pd.DataFrame({"gmv": [100.0] * len(ids)})
        return Decided(frame, _evidence(rows, [2.0] * len(rows), [PASS_] * len(rows)), factors)

    both = combine([part(["a", "b"], [0, 1, 1]), Decided.empty(), part(["c"], [0])])
    assert list(both.decisions["brand_id"]) == ["a", "b", "c"]
    assert list(both.evidence.row) == [0, 1, 1, 2]  # c's criterion follows c to position 2
    out = render(both)
    assert [len(json.loads(t)) for t in out["criteria"]] == [1, 2, 1]
    assert json.loads(out.at[2, "gmv_factors"])["gmv"] == 100.0


def test_text_frame_of_fresh_arrays_equals_the_copied_frame() -> None:
    def columns() -> dict[str, object]:
        return {
            "brand_id": np.array(["b1", "b2"], dtype=object),
            "verdict": np.array(["PASS", "FAIL"]),
            "score": np.array([0.5, np.nan]),
            "days": np.array([3, 4]),
            "as_of": pd.Timestamp("2026-03-10"),
            "awaiting_since": np.array([None, "2026-03-01"], dtype=object),
        }

    kept, copied = text_frame(columns(), fresh=True), text_frame(columns())
    pd.testing.assert_frame_equal(kept, copied, check_exact=True)
    assert [str(t) for t in kept.dtypes] == ["object", "object", "float64", "int64", "datetime64[us]", "object"]


def test_concat_of_parts_with_their_own_rules_reads_each_parts_criteria() -> None:
    # parts of different portfolios (or rebuilt from records) refer to rules of their own
    a = _evidence([0, 1], [2.0, 1.0], [PASS_, FAIL_])
    b = Evidence.of(
        **{
            **{
                k: getattr(a, k)
                for k in ("row", "source_stage", "op", "threshold", "kind", "weight", "shadow", "value", "result")
            },
            "role": np.array(["guardrail", "guardrail"], dtype=object),
            "metric": np.array(["aov", "uv"], dtype=object),
        }
    )
    both = evidence_module.concat_evidence([a, Evidence.empty(), b], [0, 2, 2])
    assert list(both.row) == [0, 1, 2, 3]
    assert list(both.metric) == ["roi", "roi", "aov", "uv"] and list(both.role) == ["criterion"] * 2 + ["guardrail"] * 2
    assert list(both.reasons()) == [*a.reasons(), *b.reasons()]


def test_criteria_json_of_shared_rules_equals_one_criterion_per_row() -> None:
    # criteria referred to by number (thresholds per tier, one missing) render as the same criteria spelled out row by row
    ev = _evidence(
        [0, 0, 1, 2, 2],
        [1.0, 2.0, float("nan"), 3.0, 0.5],
        [FAIL_, PASS_, NO_VALUE, PASS_, FAIL_],
        [1.5, float("nan"), 2.0, 1.5, 2.0],
    )
    rules = evidence_module.Rules(
        **{
            k: getattr(ev.rules, k)[:2]
            for k in ("role", "source_stage", "metric", "op", "kind", "weight", "shadow", "lag_days")
        }
    )
    shared = Evidence(ev.row, np.array([0, 1, 0, 0, 1]), ev.threshold, ev.value, ev.result, rules)
    spelled = Evidence.of(
        **{
            k: getattr(shared, k)
            for k in (
                "row",
                "role",
                "source_stage",
                "metric",
                "op",
                "threshold",
                "kind",
                "weight",
                "shadow",
                "value",
                "result",
            )
        }
    )
    assert list(criteria_json(shared, 3)) == list(criteria_json(spelled, 3))
    assert list(shared.reasons()) == list(spelled.reasons())
