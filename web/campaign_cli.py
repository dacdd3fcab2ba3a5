"""``flask campaign``: launch, resume, cancel and follow campaigns from a shell, with a progress bar.

With the in-process job backend the command runs the chunks itself (there may be no web process
to run them); with Celery it enqueues them and follows their progress from the database.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import click
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from engine import Engine
from engine.errors import EngineError, FormInvalid
from engine.jobs import InProcessJobQueue
from workflows.campaign_launch import (cancel_campaign, launch_campaign, launch_progress, resume_campaign,
                                       run_cancel_chunk, run_launch_chunk, running_instances)
from workflows.campaign_processes import PROCESSES, TARGET_KIND_NAMES, parse_moment
from workflows.campaigns import STATUS_NAMES, Campaign, all_campaigns, campaign_by_id, create_campaign
from workflows.models import Organisation
from workflows.organisations import by_code
from workflows.roles import Actor, load_actor

from .extensions import db
from .runtime import current_engine, current_jobs

campaign = AppGroup("campaign", help="集中活动 / launch, resume, cancel and follow campaigns.")
POLL_SECONDS = 0.5


def _fail(message: str) -> None:
    db.session.rollback()
    click.echo(f"错误 / error: {message}", err=True)
    raise SystemExit(1)


def _actor(username: str | None, organisation: Organisation) -> Actor:
    """The person acting, or (without ``--by``) the command line itself as an administrator of ``organisation``."""
    if username is None:
        return Actor(username="system", display_name="命令行", grants=(("admin", organisation.code, organisation.path),),
                     roles=frozenset({"admin"}))
    actor = load_actor(db.session, username)
    if actor is None:
        _fail(f"账号 {username} 不存在或已停用 / account {username!r} does not exist or is disabled")
    return actor


def _runs_here() -> bool:
    """Whether the chunks should run in this process (in-process backend) rather than on workers."""
    return isinstance(current_jobs(), InProcessJobQueue)


def _follow(session: Session, engine: Engine, target: Campaign, numbers: list[int], label: str,
            run: Callable[[Session, Engine, int, int], int] | None) -> None:
    """Show a launch's bar while chunks ``numbers`` run here (``run``) or on the workers (polling the progress)."""
    progress = launch_progress(session, target)
    with click.progressbar(length=max(progress.total, 1), label=label, show_pos=True) as bar:
        shown = progress.launched
        bar.update(shown)
        if run is not None:
            for number in numbers:
                run(session, engine, target.id, number)
                launched = launch_progress(session, target).launched
                bar.update(launched - shown)
                shown = launched
            return
        try:
            while not progress.done:
                time.sleep(POLL_SECONDS)
                session.rollback()  # a fresh snapshot for every poll
                progress = launch_progress(session, target)
                bar.update(progress.launched - shown)
                shown = progress.launched
        except KeyboardInterrupt:
            click.echo(f"\n发起仍在后台进行，可用 flask campaign progress {target.id} 查看 / the launch goes on in the "
                       "background")


def _print_progress(target: Campaign) -> None:
    progress = launch_progress(db.session, target)
    status = STATUS_NAMES.get(progress.status, progress.status)
    click.echo(f"活动 {target.id}「{target.title}」{status} / {progress.status}: {progress.launched}/{progress.total} "
               f"launched ({progress.percent}%), {progress.failed} failed, "
               f"{sum(c.state == 'done' for c in progress.chunks)}/{len(progress.chunks)} chunks done")
    if progress.status == "cancelled":
        click.echo(f"running instances left: {running_instances(db.session, target.id)}")


def _parameters(pairs: tuple[str, ...]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r}: 应为 名称=值 / expected name=value", param_hint="--param")
        params[key.strip()] = value.strip()
    return params


@campaign.command("launch")
@click.option("--process", "process_id", required=True, type=click.Choice(sorted(PROCESSES)), help="The process.")
@click.option("--title", required=True, help="The campaign's title.")
@click.option("--org", "org_code", required=True, help="Code of the organisation whose subtree is targeted.")
@click.option("--target", "target_kind", required=True, type=click.Choice(list(TARGET_KIND_NAMES)),
              help="One instance per cadre, leading organ, city or county committee of the subtree.")
@click.option("--start", default=None, help="Window start (default now); a date, or a time, China time if no zone.")
@click.option("--end", required=True, help="Window end; a date means the end of that day.")
@click.option("--param", "params", multiple=True, help="A parameter as name=value (repeat).")
@click.option("--by", "username", default=None, help="The organiser launching it (default: the command line).")
@click.option("--parent", "parent_id", type=int, default=None, help="Id of the parent campaign, if any.")
def launch_command(process_id, title, org_code, target_kind, start, end, params, username, parent_id) -> None:
    """Create and launch a campaign, showing a progress bar until every instance has started."""
    engine = current_engine()
    try:
        window_start = parse_moment(start, end_of_day=False) if start else engine.clock.now()
        window_end = parse_moment(end)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--start/--end") from None
    try:
        root = by_code(db.session, org_code)
        created = create_campaign(db.session, _actor(username, root), process_id=process_id, title=title,
                                  organisation_code=org_code, target_kind=target_kind, window_start=window_start,
                                  window_end=window_end, parameters=_parameters(params), now=engine.clock.now(),
                                  parent_id=parent_id)
        db.session.commit()
        here = _runs_here()
        numbers = launch_campaign(db.session, None if here else current_jobs(), created, engine.clock.now())
    except FormInvalid as invalid:
        _fail("; ".join(f"{e.field}: {e.message}" for e in invalid.errors))
    except EngineError as error:
        _fail(error.message)
    if created.status == "scheduled":
        click.echo(f"活动 {created.id} 已排期，将于 {window_start.isoformat()} 自动发起 / scheduled")
        return
    click.echo(f"活动 {created.id}：{created.total_targets} 个对象，{len(numbers)} 批 / campaign {created.id}: "
               f"{created.total_targets} targets in {len(numbers)} chunk(s)")
    _follow(db.session, engine, created, numbers, "发起 / launching", run_launch_chunk if here else None)
    _print_progress(created)


@campaign.command("resume")
@click.argument("campaign_id", type=int)
@click.option("--by", "username", default=None, help="The organiser resuming it (default: the command line).")
def resume_command(campaign_id: int, username: str | None) -> None:
    """Launch what is missing of a campaign (after a crash, or targets that failed)."""
    engine = current_engine()
    try:
        target = campaign_by_id(db.session, campaign_id)
        here = _runs_here()
        numbers = resume_campaign(db.session, None if here else current_jobs(),
                                  _actor(username, target.organisation), target, engine.clock.now())
    except EngineError as error:
        _fail(error.message)
    if not numbers:
        click.echo("没有需要继续发起的对象 / nothing left to launch")
    else:
        _follow(db.session, engine, target, numbers, "继续发起 / resuming", run_launch_chunk if here else None)
    _print_progress(target)


@campaign.command("cancel")
@click.argument("campaign_id", type=int)
@click.option("--reason", required=True, help="Why (recorded, and shown to those whose tasks end).")
@click.option("--by", "username", default=None, help="The organiser cancelling it (default: the command line).")
def cancel_command(campaign_id: int, reason: str, username: str | None) -> None:
    """Cancel a campaign: every open instance is ended with the reason; the history is kept."""
    engine = current_engine()
    try:
        target = campaign_by_id(db.session, campaign_id)
        here = _runs_here()
        numbers = cancel_campaign(db.session, None if here else current_jobs(),
                                  _actor(username, target.organisation), target, reason, engine.clock.now())
        if here:
            with click.progressbar(numbers, label="撤销 / cancelling") as chunks:
                for number in chunks:
                    run_cancel_chunk(db.session, engine, campaign_id, number)
    except FormInvalid as invalid:
        _fail(invalid.errors[0].message)
    except EngineError as error:
        _fail(error.message)
    click.echo(f"活动 {campaign_id} 已撤销 / cancelled"
               + ("" if here else "; its instances are being ended by the workers"))
    _print_progress(target)


@campaign.command("progress")
@click.argument("campaign_id", type=int)
def progress_command(campaign_id: int) -> None:
    """Print how far a campaign's launch has come."""
    try:
        _print_progress(campaign_by_id(db.session, campaign_id))
    except EngineError as error:
        _fail(error.message)


@campaign.command("list")
@click.option("--status", type=click.Choice(list(STATUS_NAMES)), default=None, help="Only campaigns in this state.")
@click.option("--limit", default=50, show_default=True, help="How many, newest first.")
def list_command(status: str | None, limit: int) -> None:
    """List campaigns, newest first: id, status, process, target, launched/total, title."""
    for row in all_campaigns(db.session, limit=limit, status=status):
        progress = launch_progress(db.session, row)
        click.echo(f"{row.id}\t{row.status}\t{row.process_id}\t{row.organisation.code}:{row.target_kind}\t"
                   f"{progress.launched}/{row.total_targets if row.total_targets is not None else '-'}\t{row.title}")
