"""`brandsteps validate` and `brandsteps schema`: a configs folder checked whole, and its JSON Schemas."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from brandsteps.cli.approve import read_approvers, report_approvers
from brandsteps.cli.common import EXIT_OK, portfolio_of


def cmd_validate(args: argparse.Namespace) -> int:
    from brandsteps.config import ConfigError
    from brandsteps.sources.imports import BUILTIN_PROFILES, load_profiles

    problems: list[str] = []
    brand_ids: list[str] | None = None  # known once the brands loaded: approvers.yaml's brands are checked against them
    try:
        portfolio = portfolio_of(args)
        brand_ids = list(portfolio.brands)
    except ConfigError as exc:
        problems += exc.problems
    try:  # configs/imports/*.yaml too: every problem of the folder in one report
        profiles = load_profiles(args.configs)
    except ConfigError as exc:
        problems += exc.problems
    approvers, approver_problems = read_approvers(args.configs, brand_ids)
    problems += approver_problems
    if problems:
        raise ConfigError(problems)
    stages = len(portfolio.playbook.stages)
    overrides = len(portfolio.brand_versions)
    print(
        f"{args.configs}: OK — {stages} stages, {len(portfolio.brands)} brands ({overrides} with overrides), "
        f"playbook version {portfolio.playbook_version}"
    )
    own = [n for n in profiles if n not in BUILTIN_PROFILES]
    print(
        f"import profiles: {len(BUILTIN_PROFILES)} built-in, "
        f"{len(own)} in {args.configs}/imports{': ' + ', '.join(own) if own else ''}"
    )
    report_approvers(args.configs, approvers)
    prefect_yaml = Path(args.configs).resolve().parent / "prefect.yaml"
    if prefect_yaml.exists():
        from brandsteps.config.deploy_spec import deployment_warnings, read_deployment_specs

        for warning in deployment_warnings(read_deployment_specs(prefect_yaml), portfolio.onboarding):
            print(f"warning: {warning}", file=sys.stderr)
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from brandsteps.config import write_json_schemas

    for path in write_json_schemas(Path(args.out)):
        print(path)
    return EXIT_OK
