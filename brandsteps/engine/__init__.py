"""The decision engine: window metrics, gates, readiness, evidence and the daily cycle over a portfolio.

window (window metrics) → rules (the portfolio's compiled rules) → criteria (each brand's criteria rows) →
verdicts and guardrails, then actions (ordered rule tables, table.py) → gates (a cohort's decisions) →
evidence (what was decided on, rendered as the ledger's JSON) and diagnosis; cycle puts one day together;
reference/ is the same decision rule for one brand in plain Python, the engine's executable spec.
"""
