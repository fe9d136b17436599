"""Serve prefect.yaml's deployments, or register them for a work pool, with the overdue-brand automation (no flow)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prefect import serve
from prefect.automations import Automation
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.deployments.runner import RunnerDeployment
from prefect.events.actions import DoNothing, SendNotification
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger
from prefect.flows import Flow, load_flow_from_entrypoint
from prefect.schedules import Cron, Interval

from brandsteps.config import Portfolio
from brandsteps.config.deploy_spec import (
    CYCLE_DEPLOYMENT,
    CYCLE_SCHEDULE_SLUG,
    DEADLINE_SCHEDULE_SLUG,
    DeploymentSpec,
    deadline_cron,
    deployments_file,
    main_schedule,
    read_deployment_specs,
)
from brandsteps.engine.events import EVENT_PREFIX, OVERDUE_EVENT, RESOURCE_PREFIX
from brandsteps.reports.report_server import (
    DEFAULT_REPORT_PORT,
    REPORT_DIR_ENV,
    REPORT_URL_ENV,
    PortInUse,
    ReportServer,
    start_report_server,
)
from tasks.prefect_types import synchronous

PROJECT_ROOT = Path(__file__).resolve().parent.parent
OVERDUE_AUTOMATION = "brandsteps-brand-overdue"
WEBHOOK_BLOCK = "brandsteps-overdue-webhook"


def _schedules(spec: DeploymentSpec, portfolio: Portfolio) -> list[Any]:
    if spec.name != CYCLE_DEPLOYMENT:
        return [
            Interval(s.interval, slug=s.slug, active=s.active)
            if s.interval
            else Cron(s.cron, timezone=s.timezone, slug=s.slug, active=s.active)
            for s in spec.schedules
        ]
    main = main_schedule(spec)
    slug = main.slug if main and main.slug else CYCLE_SCHEDULE_SLUG
    # onboarding.yaml is the operators' one place for when the cycle runs.
    onboarding = portfolio.onboarding
    schedules = [Cron(onboarding.schedule, timezone=onboarding.timezone, slug=slug, active=True)]
    if onboarding.data_deadline is not None:  # the run that decides the brands whose data never came
        at_deadline = deadline_cron(onboarding.data_deadline)
        schedules.append(Cron(at_deadline, timezone=onboarding.timezone, slug=DEADLINE_SCHEDULE_SLUG, active=True))
    return schedules


def _triggers(spec: DeploymentSpec, portfolio: Portfolio) -> list[DeploymentEventTrigger]:
    """prefect.yaml's triggers as `prefect deploy` makes them; the cycle's on imports is on only with data_deadline."""
    out = []
    for trigger in spec.triggers:
        fields = trigger.prefect_fields()
        if spec.name == CYCLE_DEPLOYMENT and trigger.starts_on_imports():
            # Without a deadline a cycle decides every brand on what has arrived: an import at dawn must not start it
            fields["enabled"] = portfolio.onboarding.data_deadline is not None
        out.append(DeploymentEventTrigger(**fields))
    return out


def runner_deployments(
    portfolio: Portfolio, configs: Path, prefect_yaml: Path | None = None, for_workers: bool = False
) -> list[RunnerDeployment]:
    """The deployments of prefect.yaml, parameters pointing at this configs folder.

    for_workers: the flow code is pulled from this checkout's folder (a worker's runs start elsewhere).
    """
    specs = read_deployment_specs(prefect_yaml or deployments_file(configs, PROJECT_ROOT))
    out = []
    for spec in specs:
        path, _, func = spec.entrypoint.partition(":")
        if for_workers:
            flow = synchronous(Flow.from_source(source=str(PROJECT_ROOT), entrypoint=spec.entrypoint))
        else:
            flow = load_flow_from_entrypoint(f"{PROJECT_ROOT / path}:{func}")
        parameters = {**spec.parameters, "configs": str(configs)}
        deployment = flow.to_deployment(
            name=spec.name,
            description=spec.description,
            tags=list(spec.tags),
            parameters=parameters,
            schedules=_schedules(spec, portfolio),
            triggers=list(_triggers(spec, portfolio)),
        )
        out.append(synchronous(deployment))
    return out


def overdue_automation(block_id: Any | None) -> Automation:
    """Notify when a brand crosses max_days_in_stage (one event per brand, the day it becomes overdue)."""
    trigger = EventTrigger(
        expect={f"{EVENT_PREFIX}.{OVERDUE_EVENT}"},
        match={"prefect.resource.id": f"{RESOURCE_PREFIX}.*"},
        posture=Posture.Reactive,
        threshold=1,
    )
    body = (
        "{{ event.resource.name }} ({{ event.payload.brand_id }}) is overdue in {{ event.payload.stage }}: "
        "day {{ event.payload.days_in_stage }} in stage on {{ event.payload.as_of }}. {{ event.payload.reason }}"
    )
    actions: list[Any] = (
        [SendNotification(block_document_id=block_id, subject="Brand overdue: {{ event.resource.name }}", body=body)]
        if block_id
        else [DoNothing()]
    )
    return Automation(
        name=OVERDUE_AUTOMATION,
        description="A brand passed max_days_in_stage. "
        "Point it at a webhook with `brandsteps serve --overdue-webhook URL`.",
        trigger=trigger,
        actions=actions,
    )


def ensure_overdue_automation(webhook_url: str | None) -> Automation:
    """Create or replace the overdue automation (and its webhook block when a URL is given)."""
    block_id = None
    if webhook_url:
        block = CustomWebhookNotificationBlock(
            name="brandsteps overdue",
            url=webhook_url,
            json_data={"subject": "{{subject}}", "text": "{{body}}"},
            headers=None,
            cookies=None,
        )
        block_id = synchronous(block.save(WEBHOOK_BLOCK, overwrite=True))
    wanted = overdue_automation(block_id)
    try:
        existing = synchronous(Automation.read(name=OVERDUE_AUTOMATION))
    except ValueError:
        return synchronous(wanted.create())
    existing.trigger, existing.actions, existing.description = wanted.trigger, wanted.actions, wanted.description
    existing.update()
    return existing


def register_deployments(portfolio: Portfolio, configs: Path, work_pool: str) -> list[str]:
    """Register prefect.yaml's deployments for a work pool (what `prefect deploy --all` does), runs done by its workers.

    Workers run the flows from this checkout's folder, so start them where it is (or a copy at the same path).
    """
    os.chdir(PROJECT_ROOT)
    ids = [str(d.apply(work_pool_name=work_pool)) for d in runner_deployments(portfolio, configs, for_workers=True)]
    ensure_overdue_automation(None)
    return ids


def serve_reports(
    report_dir: Path, host: str, port: int | None = None, url: str | None = None
) -> tuple[ReportServer, str]:
    """Serve the reports folder over HTTP; its path and URL go in this process's environment, for the runs it starts.

    The cycles then write their reports there and link <url>/<as_of>/index.html. port None: the
    default port, or any free one when that is taken (the URL follows); a port given must be free.
    Returns the server and the base URL the artifacts use (url, or the server's own).
    """
    try:
        server = start_report_server(report_dir, host, DEFAULT_REPORT_PORT if port is None else port)
    except PortInUse:
        if port is not None:
            raise
        server = start_report_server(report_dir, host, 0)
    base = (url or server.url).rstrip("/")
    os.environ[REPORT_DIR_ENV] = str(report_dir.resolve())
    os.environ[REPORT_URL_ENV] = base
    return server, base


def serve_all(portfolio: Portfolio, configs: Path, webhook_url: str | None = None, limit: int | None = None) -> None:
    """Serve every deployment from this process until stopped; schedules stay active on shutdown."""
    os.chdir(PROJECT_ROOT)  # entrypoints in prefect.yaml are relative to the project
    deployments = runner_deployments(portfolio, configs)
    ensure_overdue_automation(webhook_url)
    serve(*deployments, pause_on_shutdown=False, limit=limit)
