"""Shared by the approval tests: brands awaiting approval, an approvers.yaml, and the approvers' TOTP secrets."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pyotp
import pytest

from brandsteps.config import load_portfolio
from brandsteps.engine.cycle import run_day
from brandsteps.ledger import Ledger
from brandsteps.sources.metrics_source import validate
from tests.conftest import simple_playbook, write_configs

# Fixed base32 test secrets (never real ones): the environment variables approvers.yaml names.
SECRETS = {
    "BRANDSTEPS_TOTP_TEST_ZHAO": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
    "BRANDSTEPS_TOTP_TEST_WANG": "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU",
    "BRANDSTEPS_TOTP_TEST_SUN": "MFRGGZDFMZTWQ2LKMFRGGZDFMZTWQ2LK",
}
UNSET_ENV = "BRANDSTEPS_TOTP_TEST_ZHOU"  # named in approvers.yaml, set nowhere

# tea's owner is 王敏 Wang Min (four eyes); 孙丽 answers only public_traffic; 周婷 only silk and has no secret set.
APPROVERS_YAML = """\
approvers:
  - {name: 赵磊 Zhao Lei, stages: [affiliate_trial], totp_secret_env: BRANDSTEPS_TOTP_TEST_ZHAO}
  - {name: 王敏 Wang Min, totp_secret_env: BRANDSTEPS_TOTP_TEST_WANG}
  - {name: 孙丽 Sun Li, stages: [public_traffic], totp_secret_env: BRANDSTEPS_TOTP_TEST_SUN}
  - {name: 周婷 Zhou Ting, brands: [silk], totp_secret_env: BRANDSTEPS_TOTP_TEST_ZHOU}
"""


def awaiting_portfolio(
    root: Path,
    approvers_yaml: str | None = APPROVERS_YAML,
    ledger_url: str = "sqlite:///data/ledger.sqlite",
    notify: list[dict[str, object]] | None = None,
) -> Path:
    """Brands tea and silk awaiting approval in affiliate_trial since 2026-01-02 (in ledger_url), with approvers_yaml (and notify channels)."""
    brands = {
        "tea": {"name": "山野茶社", "owner": "王敏 Wang Min", "requires_approval": ["affiliate_trial"]},
        "silk": {"name": "丝绸", "owner": "陈静", "requires_approval": ["affiliate_trial"]},
    }
    onboarding = {
        "metrics": "data/metrics.csv",
        "ledger": "sqlite:///data/ledger.sqlite",
        **({"notify": notify} if notify else {}),
    }
    configs = write_configs(
        root, brands, playbook=simple_playbook(affiliate_trial={"consecutive_passes": 1}), onboarding=onboarding
    )
    if approvers_yaml is not None:
        (configs / "approvers.yaml").write_text(approvers_yaml, encoding="utf-8")
    portfolio = load_portfolio(configs, apply_env=False)
    ledger = Ledger(ledger_url, root)
    ledger.create()
    rows = pd.DataFrame(
        [
            {"brand_id": b, "date": d, "gmv": 500.0, "orders": 10.0}
            for b in brands
            for d in pd.date_range("2026-01-01", periods=3)
        ]
    )
    batch = validate(rows, as_of=date(2026, 1, 3), today=date(2026, 2, 1))
    for day in (1, 2, 3):
        run_day(portfolio, batch, ledger, date(2026, 1, day), None)
    ledger.dispose()
    return configs


def code_now(env_name: str, offset: int = 0) -> str:
    """The code an authenticator app with this secret shows now (offset: steps of 30 s later or earlier)."""
    totp = pyotp.TOTP(SECRETS[env_name])
    return totp.at(pd.Timestamp.now(tz="UTC").to_pydatetime(), counter_offset=offset)


def wrong_code(env_name: str) -> str:
    """A code valid in no step near now, even if a step boundary passes while the test runs."""
    near = {code_now(env_name, offset) for offset in range(-3, 4)}
    return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in near)


def set_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, secret in SECRETS.items():
        monkeypatch.setenv(name, secret)
    monkeypatch.delenv(UNSET_ENV, raising=False)
