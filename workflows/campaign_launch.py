"""Launching a campaign at province scale: plan the targets in bulk, start them chunk by chunk, resume, cancel.

- **Plan** (:func:`plan_campaign`): one ``INSERT … SELECT`` from the cadre or organisation table over
  the subtree writes every target with its chunk number (about 500 per chunk), then one more
  writes the chunk rows.  A campaign is planned once: the ``scheduled → launching`` change is a
  conditional UPDATE, so two launchers never plan twice.
- **Launch a chunk** (:func:`run_launch_chunk`, the ``campaign.launch_chunk`` job): lock the chunk,
  start one instance per target still without one (``Engine.start_many``), record the instance
  ids with a conditional UPDATE (``… WHERE instance_id IS NULL``) and commit — all in one
  transaction, so a crash half-way leaves nothing, and a redelivered or resumed chunk finds its
  targets launched and does nothing.
- **Resume** (:func:`resume_campaign`) enqueues the chunks still pending; **scheduled** campaigns
  are launched by :func:`launch_due_campaigns` (the periodic ``campaign.launch_due`` job) once
  their window opens; **cancel** (:func:`cancel_campaign`, then ``campaign.cancel_chunk`` jobs)
  ends every open instance with the reason, keeping the history.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Integer, Select, String, bindparam, cast, func, insert, literal, literal_column, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from engine import Engine
from engine.errors import ConcurrentUpdate, EngineError, FieldError, FormInvalid, TaskAlreadyCompleted
from engine.models import ProcessInstance

from .campaign_processes import LaunchTarget
from .campaigns import (CANCELLED, CHUNK_DONE, CHUNK_FAILED, CHUNK_PENDING, LAUNCHED, LAUNCHING, SCHEDULED, Campaign,
                        CampaignChunk, CampaignTarget, campaign_by_id, check_may_manage)
from .models import LEADING_ORGAN_KINDS, Cadre, Organisation, User
from .organisations import in_subtree
from .roles import Actor

if TYPE_CHECKING:
    from engine.jobs import JobQueue

log = logging.getLogger(__name__)

CHUNK_SIZE = 500
LAUNCH_CHUNK_JOB = "campaign.launch_chunk"
CANCEL_CHUNK_JOB = "campaign.cancel_chunk"
LAUNCH_DUE_JOB = "campaign.launch_due"
# A pending chunk not taken for this long is enqueued again by the periodic job (its first job
# may have been lost between the commit that planned it and the enqueue).
STALE_CHUNK_AFTER = timedelta(minutes=15)
MAX_BULK_RETRIES = 5  # failed targets set aside before a chunk is started one target at a time

TARGET_ORGAN_KINDS = {"organ": LEADING_ORGAN_KINDS, "city": ("city", "enterprise", "university", "agency"),
                      "county": ("county",)}


# ----------------------------------------------------------------------------------- planning


def target_rows(root: Organisation, target_kind: str) -> Select:
    """The targets of a subtree as a SELECT: key, organisation, cadre, and the tree order to chunk them in."""
    if target_kind == "cadre":
        return (select((literal_column("'cadre:'", String) + cast(Cadre.id, String)).label("target_key"),
                       Cadre.organisation_id.label("organisation_id"), Cadre.id.label("cadre_id"),
                       Organisation.path.label("path"), Cadre.id.label("sort_id"))
                .join(Organisation, Organisation.id == Cadre.organisation_id)
                .join(User, User.id == Cadre.user_id)
                .where(in_subtree(Organisation.path, root.path), User.active.is_(True)))
    return (select((literal_column("'organ:'", String) + cast(Organisation.id, String)).label("target_key"),
                   Organisation.id.label("organisation_id"), cast(None, Integer).label("cadre_id"),
                   Organisation.path.label("path"), Organisation.id.label("sort_id"))
            .where(in_subtree(Organisation.path, root.path), Organisation.kind.in_(TARGET_ORGAN_KINDS[target_kind])))


def count_targets(session: Session, root: Organisation, target_kind: str) -> int:
    """How many instances a campaign over ``root``'s subtree would start (shown before confirming)."""
    return session.scalar(select(func.count()).select_from(target_rows(root, target_kind).subquery()))


def plan_campaign(session: Session, campaign: Campaign, now: datetime, chunk_size: int | None = None) -> bool:
    """Write the targets and chunks of a scheduled campaign and mark it launching (caller commits).

    Returns False if the campaign was not scheduled any more (someone else planned or cancelled it).
    """
    taken = session.execute(update(Campaign).where(Campaign.id == campaign.id, Campaign.status == SCHEDULED)
                            .values(status=LAUNCHING, launched_at=now).execution_options(synchronize_session=False))
    if taken.rowcount != 1:
        session.refresh(campaign)
        return False
    chunk_size = chunk_size or CHUNK_SIZE
    rows = target_rows(campaign.organisation, campaign.target_kind).subquery()
    numbered = select(literal(campaign.id, Integer), rows.c.target_key, rows.c.organisation_id, rows.c.cadre_id,
                      (func.row_number().over(order_by=(rows.c.path, rows.c.sort_id)) - 1) // chunk_size)
    session.execute(insert(CampaignTarget).from_select(
        ["campaign_id", "target_key", "organisation_id", "cadre_id", "chunk"], numbered))
    chunks = (select(CampaignTarget.campaign_id, CampaignTarget.chunk, func.count(), literal_column("0"),
                     literal_column("0"), literal_column(f"'{CHUNK_PENDING}'"), literal_column("0"))
              .where(CampaignTarget.campaign_id == campaign.id).group_by(CampaignTarget.campaign_id,
                                                                         CampaignTarget.chunk))
    session.execute(insert(CampaignChunk).from_select(
        ["campaign_id", "number", "size", "launched", "failed", "state", "attempts"], chunks))
    total = session.scalar(select(func.coalesce(func.sum(CampaignChunk.size), 0))
                           .where(CampaignChunk.campaign_id == campaign.id))
    values: dict[str, Any] = {"total_targets": total}
    if total == 0:
        values.update(status=LAUNCHED, launch_finished_at=now)
    session.execute(update(Campaign).where(Campaign.id == campaign.id).values(**values)
                    .execution_options(synchronize_session=False))
    session.refresh(campaign)
    return True


def pending_chunks(session: Session, campaign_id: int) -> list[int]:
    """Numbers of the chunks with targets still to launch (pending, or failed and worth retrying)."""
    return list(session.scalars(select(CampaignChunk.number).where(
        CampaignChunk.campaign_id == campaign_id, CampaignChunk.state != CHUNK_DONE).order_by(CampaignChunk.number)))


def _mark_enqueued(session: Session, campaign_id: int, numbers: Sequence[int], now: datetime) -> None:
    if numbers:
        session.execute(update(CampaignChunk).where(CampaignChunk.campaign_id == campaign_id,
                                                    CampaignChunk.number.in_(numbers))
                        .values(enqueued_at=now).execution_options(synchronize_session=False))


def _enqueue_chunks(queue: JobQueue, job: str, campaign_id: int, numbers: Sequence[int]) -> None:
    if numbers:
        queue.enqueue_many(job, [{"campaign_id": campaign_id, "chunk": n} for n in numbers])


def launch_campaign(session: Session, queue: JobQueue | None, campaign: Campaign, now: datetime) -> list[int]:
    """Launch a campaign whose window has opened: plan it, commit, enqueue its chunks; return their numbers.

    A campaign whose window starts later stays scheduled (the ``campaign.launch_due`` job launches
    it).  Launching a campaign already launching or launched resumes it instead: idempotent.  With
    ``queue=None`` nothing is enqueued and the caller runs the chunks itself (the CLI).
    """
    if campaign.status == CANCELLED:
        raise TaskAlreadyCompleted(f"活动「{campaign.title}」已撤销 / campaign {campaign.id} was cancelled")
    if campaign.status == SCHEDULED:
        if campaign.window_start > now:
            return []
        plan_campaign(session, campaign, now)
    numbers = pending_chunks(session, campaign.id)
    if queue is not None:
        _mark_enqueued(session, campaign.id, numbers, now)
    session.commit()
    if queue is not None:
        _enqueue_chunks(queue, LAUNCH_CHUNK_JOB, campaign.id, numbers)
    return numbers


def resume_campaign(session: Session, queue: JobQueue | None, actor: Actor | None, campaign: Campaign,
                    now: datetime) -> list[int]:
    """Enqueue again every chunk with targets not yet launched (after a crash, or to retry failures)."""
    if actor is not None:
        check_may_manage(actor, campaign)
    if campaign.status == LAUNCHED and not pending_chunks(session, campaign.id):
        return []
    return launch_campaign(session, queue, campaign, now)


def launch_due_campaigns(session: Session, queue: JobQueue, now: datetime) -> list[int]:
    """Launch every scheduled campaign whose window has opened, and re-enqueue stale chunks; return campaign ids."""
    due = list(session.scalars(select(Campaign.id).where(Campaign.status == SCHEDULED, Campaign.window_start <= now)
                               .order_by(Campaign.window_start, Campaign.id).limit(100)))
    for campaign_id in due:
        launch_campaign(session, queue, campaign_by_id(session, campaign_id), now)
    stale = session.execute(select(CampaignChunk.campaign_id, CampaignChunk.number)
                            .join(Campaign, Campaign.id == CampaignChunk.campaign_id)
                            .where(Campaign.status == LAUNCHING, CampaignChunk.state == CHUNK_PENDING,
                                   CampaignChunk.enqueued_at < now - STALE_CHUNK_AFTER)
                            .order_by(CampaignChunk.campaign_id, CampaignChunk.number).limit(1000)).all()
    by_campaign: dict[int, list[int]] = {}
    for campaign_id, number in stale:
        by_campaign.setdefault(campaign_id, []).append(number)
    for campaign_id, numbers in by_campaign.items():
        _mark_enqueued(session, campaign_id, numbers, now)
    session.commit()
    for campaign_id, numbers in by_campaign.items():
        log.warning("campaign %s: enqueueing %d stale chunk(s) again", campaign_id, len(numbers))
        _enqueue_chunks(queue, LAUNCH_CHUNK_JOB, campaign_id, numbers)
    return due


# ------------------------------------------------------------------------------ launch a chunk


def _take_chunk(session: Session, campaign_id: int, number: int) -> bool:
    """Lock a chunk row: on PostgreSQL a second run of the chunk waits here; on SQLite this takes the write lock."""
    result = session.execute(update(CampaignChunk).where(CampaignChunk.campaign_id == campaign_id,
                                                         CampaignChunk.number == number)
                             .values(attempts=CampaignChunk.attempts + 1)
                             .execution_options(synchronize_session=False))
    return result.rowcount == 1


def _status_now(session: Session, campaign_id: int) -> str | None:
    return session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))


def _unlaunched(session: Session, campaign_id: int, number: int) -> list[Any]:
    query = (select(CampaignTarget.id, CampaignTarget.target_key, Organisation.code, Organisation.name,
                    User.username, Cadre.name.label("cadre_name"))
             .join(Organisation, Organisation.id == CampaignTarget.organisation_id)
             .outerjoin(Cadre, Cadre.id == CampaignTarget.cadre_id)
             .outerjoin(User, User.id == Cadre.user_id)
             .where(CampaignTarget.campaign_id == campaign_id, CampaignTarget.chunk == number,
                    CampaignTarget.instance_id.is_(None))
             .order_by(CampaignTarget.id))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=CampaignTarget)
    return list(session.execute(query))


def _start_requests(campaign: Campaign, rows: list[Any]) -> list[tuple[int, dict[str, Any], str, str]]:
    """(target id, start data, organisation code, business key) of each target."""
    process = campaign.process
    requests = []
    for row in rows:
        target = LaunchTarget(key=row.target_key, organisation_code=row.code, organisation_name=row.name,
                              username=row.username, cadre_name=row.cadre_name)
        data = process.start_data(target, campaign.parameters)
        data.update(campaign_id=campaign.id, campaign_title=campaign.title)
        requests.append((row.id, data, row.code, f"campaign-{campaign.id}-{row.target_key}"))
    return requests


def _start_all(session: Session, engine: Engine, campaign: Campaign,
               requests: list[tuple[int, dict[str, Any], str, str]]) -> list[int]:
    start_many = getattr(engine, "start_many", None)
    if start_many is not None:
        from engine import StartRequest
        return list(start_many(session, campaign.definition_id,
                               [StartRequest(data=data, organisation_id=org, business_key=key)
                                for _id, data, org, key in requests], actor=campaign.launched_by))
    return [engine.start(session, campaign.process_id, data, organisation_id=org, business_key=key,
                         actor=campaign.launched_by, definition_id=campaign.definition_id).id
            for _id, data, org, key in requests]


def _start_each(session: Session, engine: Engine, campaign: Campaign,
                requests: list[tuple[int, dict[str, Any], str, str]]) -> tuple[list[tuple[int, int]], dict[int, str]]:
    """Start the targets one by one, each in a savepoint, so one bad target does not hold up the rest."""
    started, failed = [], {}
    for request in requests:
        try:
            with session.begin_nested():
                started.append((request[0], _start_all(session, engine, campaign, [request])[0]))
        except EngineError as error:
            failed[request[0]] = error.message[:500]
    return started, failed


def _start_chunk(session: Session, engine: Engine, campaign: Campaign,
                 requests: list[tuple[int, dict[str, Any], str, str]]) -> tuple[list[tuple[int, int]], dict[int, str]]:
    """Start the targets in bulk; a target whose start fails is set aside (with why) and the rest go on.

    ``Engine.start_many`` names the failing request (``request_index``); without that, or after
    several failures, the rest are started one by one.
    """
    pending, failed = list(requests), {}
    while pending:
        try:
            with session.begin_nested():
                ids = _start_all(session, engine, campaign, pending)
            return [(request[0], instance_id) for request, instance_id in zip(pending, ids)], failed
        except EngineError as error:
            index = getattr(error, "request_index", None)
            if index is None or len(failed) >= MAX_BULK_RETRIES:
                started, more = _start_each(session, engine, campaign, pending)
                return started, {**failed, **more}
            failed[pending[index][0]] = error.message[:500]
            del pending[index]
    return [], failed


def launch_chunk(session: Session, engine: Engine, campaign_id: int, number: int, now: datetime) -> int:
    """Start an instance for each target of a chunk that has none yet; return how many (caller commits).

    Idempotent: the chunk row is locked first, only targets without an instance are started, and
    their ids are written with ``… WHERE instance_id IS NULL`` (a second writer would fail, and
    its transaction — instances included — roll back).  A cancelled campaign launches nothing.
    """
    if not _take_chunk(session, campaign_id, number):
        return 0
    if _status_now(session, campaign_id) not in (LAUNCHING, LAUNCHED):
        return 0
    rows = _unlaunched(session, campaign_id, number)
    started: list[tuple[int, int]] = []
    failed: dict[int, str] = {}
    if rows:
        campaign = campaign_by_id(session, campaign_id)
        started, failed = _start_chunk(session, engine, campaign, _start_requests(campaign, rows))
        _record_instances(session, started, now)
        if failed:
            targets = CampaignTarget.__table__
            session.connection().execute(
                update(targets).where(targets.c.id == bindparam("b_id")).values(error=bindparam("b_error")),
                [{"b_id": target_id, "b_error": error} for target_id, error in failed.items()])
    session.execute(update(CampaignChunk).where(CampaignChunk.campaign_id == campaign_id,
                                                CampaignChunk.number == number)
                    .values(launched=CampaignChunk.launched + len(started), failed=len(failed),
                            state=CHUNK_FAILED if failed else CHUNK_DONE, finished_at=now)
                    .execution_options(synchronize_session=False))
    return len(started)


_TARGETS = CampaignTarget.__table__
_RECORD_INSTANCE = (update(_TARGETS).where(_TARGETS.c.id == bindparam("b_id"), _TARGETS.c.instance_id.is_(None))
                    .values(instance_id=bindparam("b_instance"), launched_at=bindparam("b_at"), error=None))
_LAUNCHED_ROWS = (func.unnest(bindparam("u_id", type_=ARRAY(Integer)), bindparam("u_instance", type_=ARRAY(BigInteger)))
                  .table_valued("id", "instance_id").render_derived())
# PostgreSQL: one statement for the whole chunk instead of one UPDATE per target.
_RECORD_INSTANCES = (update(_TARGETS).where(_TARGETS.c.id == _LAUNCHED_ROWS.c.id, _TARGETS.c.instance_id.is_(None))
                     .values(instance_id=_LAUNCHED_ROWS.c.instance_id, launched_at=bindparam("b_at"), error=None))


def _record_instances(session: Session, started: list[tuple[int, int]], now: datetime) -> None:
    if not started:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        result = connection.execute(_RECORD_INSTANCES, {"u_id": [target_id for target_id, _i in started],
                                                        "u_instance": [instance_id for _t, instance_id in started],
                                                        "b_at": now})
        checked = True
    else:
        result = connection.execute(_RECORD_INSTANCE, [{"b_id": target_id, "b_instance": instance_id, "b_at": now}
                                                       for target_id, instance_id in started])
        checked = connection.dialect.supports_sane_multi_rowcount
    if checked and result.rowcount != len(started):
        raise ConcurrentUpdate("活动对象刚被另一进程发起 / a campaign target was launched by another worker a "
                               "moment ago; this run is rolled back")


def finish_if_complete(session: Session, campaign_id: int, now: datetime) -> bool:
    """Mark a launching campaign launched once no chunk is pending (caller commits); return whether it is."""
    if session.scalar(select(func.count()).where(CampaignChunk.campaign_id == campaign_id,
                                                 CampaignChunk.state == CHUNK_PENDING)):
        return False
    session.execute(update(Campaign).where(Campaign.id == campaign_id, Campaign.status == LAUNCHING)
                    .values(status=LAUNCHED, launch_finished_at=now).execution_options(synchronize_session=False))
    return True


def run_launch_chunk(session: Session, engine: Engine, campaign_id: int, number: int) -> int:
    """The ``campaign.launch_chunk`` job: launch one chunk and commit, then mark the campaign launched if done.

    The completion check runs in its own transaction after the chunk's commit, so of two last
    chunks finishing at once at least one sees them both done.
    """
    started = launch_chunk(session, engine, campaign_id, number, engine.clock.now())
    session.commit()
    finish_if_complete(session, campaign_id, engine.clock.now())
    session.commit()
    return started


# ------------------------------------------------------------------------------------- cancel


def cancel_campaign(session: Session, queue: JobQueue | None, actor: Actor, campaign: Campaign, reason: str,
                    now: datetime) -> list[int]:
    """Cancel a campaign: record who, when and why, commit, and enqueue the ending of its open instances.

    Returns the chunk numbers whose instances are being ended (``queue=None``: the caller runs them).
    Targets not yet launched are never launched: every chunk re-reads the status under its lock.
    """
    check_may_manage(actor, campaign)
    reason = (reason or "").strip()
    if not reason:
        raise FormInvalid([FieldError("reason", "请说明撤销原因 / say why the campaign is cancelled")])
    if len(reason) > 500:
        raise FormInvalid([FieldError("reason", "撤销原因不能超过500字 / the reason is longer than 500 characters")])
    done = session.execute(update(Campaign).where(Campaign.id == campaign.id, Campaign.status != CANCELLED)
                           .values(status=CANCELLED, cancel_reason=reason, cancelled_by=actor.username,
                                   cancelled_at=now).execution_options(synchronize_session=False))
    if done.rowcount != 1:
        raise TaskAlreadyCompleted(f"活动「{campaign.title}」已撤销 / campaign {campaign.id} is already cancelled")
    numbers = list(session.scalars(select(CampaignChunk.number).where(CampaignChunk.campaign_id == campaign.id)
                                   .order_by(CampaignChunk.number)))
    session.commit()
    session.refresh(campaign)
    if queue is not None:
        _enqueue_chunks(queue, CANCEL_CHUNK_JOB, campaign.id, numbers)
    return numbers


def run_cancel_chunk(session: Session, engine: Engine, campaign_id: int, number: int) -> int:
    """The ``campaign.cancel_chunk`` job: end the running instances of one chunk, commit; return how many.

    Idempotent: only instances still running are cancelled, and the chunk lock makes a launch of
    the same chunk that was under way finish first.
    """
    if not _take_chunk(session, campaign_id, number) or _status_now(session, campaign_id) != CANCELLED:
        session.rollback()
        return 0
    campaign = session.get(Campaign, campaign_id, populate_existing=True)
    running = list(session.scalars(
        select(CampaignTarget.instance_id).join(ProcessInstance, ProcessInstance.id == CampaignTarget.instance_id)
        .where(CampaignTarget.campaign_id == campaign_id, CampaignTarget.chunk == number,
               ProcessInstance.status == "running").order_by(CampaignTarget.instance_id)))
    reason = f"集中活动「{campaign.title}」已撤销：{campaign.cancel_reason} / campaign cancelled"
    ended = 0
    for instance_id in running:
        try:
            with session.begin_nested():
                engine.cancel(session, instance_id, campaign.cancelled_by, reason)
            ended += 1
        except TaskAlreadyCompleted:
            continue  # it ended by itself meanwhile
    session.commit()
    return ended


# ----------------------------------------------------------------------------------- progress


@dataclass(frozen=True)
class ChunkProgress:
    """One chunk's share of the launch."""

    number: int
    size: int
    launched: int
    failed: int
    state: str


@dataclass(frozen=True)
class LaunchProgress:
    """How far a campaign's launch has come (read from the chunk rows: cheap to poll)."""

    campaign_id: int
    status: str
    total: int
    launched: int
    failed: int
    chunks: list[ChunkProgress]

    @property
    def done(self) -> bool:
        """Nothing left to launch (or the campaign was cancelled)."""
        return self.status in (LAUNCHED, CANCELLED)

    @property
    def percent(self) -> int:
        """Launched out of total, in whole percent."""
        return 100 if not self.total else int(100 * self.launched / self.total)

    def as_json(self) -> dict[str, Any]:
        """The JSON the progress endpoint answers with."""
        return {"campaign_id": self.campaign_id, "status": self.status, "total": self.total,
                "launched": self.launched, "failed": self.failed, "percent": self.percent, "done": self.done,
                "chunks": [{"number": c.number, "size": c.size, "launched": c.launched, "failed": c.failed,
                            "state": c.state} for c in self.chunks]}


def launch_progress(session: Session, campaign: Campaign) -> LaunchProgress:
    """Launched out of total, overall and per chunk."""
    chunks = [ChunkProgress(*row) for row in session.execute(
        select(CampaignChunk.number, CampaignChunk.size, CampaignChunk.launched, CampaignChunk.failed,
               CampaignChunk.state).where(CampaignChunk.campaign_id == campaign.id).order_by(CampaignChunk.number))]
    status = session.scalar(select(Campaign.status).where(Campaign.id == campaign.id))
    return LaunchProgress(campaign.id, status, sum(c.size for c in chunks), sum(c.launched for c in chunks),
                          sum(c.failed for c in chunks), chunks)


def running_instances(session: Session, campaign_id: int) -> int:
    """How many of a campaign's instances are still running (what a cancel still has to end)."""
    return session.scalar(select(func.count()).select_from(CampaignTarget)
                          .join(ProcessInstance, ProcessInstance.id == CampaignTarget.instance_id)
                          .where(CampaignTarget.campaign_id == campaign_id, ProcessInstance.status == "running"))
