"""Campaigns (全团集中活动): a process launched once per target over an organisation subtree.

A :class:`Campaign` names a deployed process version, a window, the subtree it reaches and what
it targets there (each cadre, each leading organ, each city, each county committee), and the
parameters the process reads.  Its :class:`CampaignTarget` rows are planned in bulk; each holds
the one instance started for it, and ``UNIQUE(campaign_id, target_key)`` plus the conditional
write of ``instance_id`` are what make every launch idempotent.  :class:`CampaignChunk` rows are
the units of work the background jobs take (about 500 targets each) and carry the progress.

This module holds the tables, creating a campaign (rights, parameters, the no-raise rule),
reading campaigns, and :func:`completion_by_organisation` for the rankings.  Planning and
launching are in :mod:`workflows.campaign_launch`, the numbers in :mod:`workflows.campaign_dashboard`.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint, func, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from engine.errors import FieldError, FormInvalid, NotAllowed, NotFound
from engine.models import Base, ProcessDefinition, ProcessInstance

from .campaign_processes import (CHINA, TARGET_KIND_NAMES, CampaignProcess, campaign_process, normalise_parameters,
                                 raised_limits)
from .models import Organisation
from .organisations import ancestor_ids, by_code, in_subtree, is_within
from .roles import Actor

SCHEDULED, LAUNCHING, LAUNCHED, CANCELLED = "scheduled", "launching", "launched", "cancelled"
STATUS_NAMES = {SCHEDULED: "待发起", LAUNCHING: "发起中", LAUNCHED: "已发起", CANCELLED: "已撤销"}
CHUNK_PENDING, CHUNK_DONE, CHUNK_FAILED = "pending", "done", "failed"
LAUNCHING_ROLE = "organiser"

_INSTANCE_ID = BigInteger().with_variant(Integer, "sqlite")


class Campaign(Base):
    """One campaign: what is launched, to whom, when, with which parameters, and what became of it."""

    __tablename__ = "campaign"
    __table_args__ = (Index("ix_campaign_status_window_start", "status", "window_start"),
                      Index("ix_campaign_organisation_created", "organisation_id", "created_at"),
                      Index("ix_campaign_launched_at", "launched_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[str] = mapped_column(String(255))
    definition_id: Mapped[int] = mapped_column(ForeignKey("process_definition.id"))  # the version launched
    title: Mapped[str] = mapped_column(String(200))
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))  # root of the target subtree
    target_kind: Mapped[str] = mapped_column(String(16))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    launched_by: Mapped[str] = mapped_column(String(64))  # the organiser's username
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=SCHEDULED)
    total_targets: Mapped[int | None] = mapped_column(Integer)  # known once planned
    cancel_reason: Mapped[str | None] = mapped_column(String(500))
    cancelled_by: Mapped[str | None] = mapped_column(String(64))
    cancelled_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    launched_at: Mapped[datetime | None]  # when the launch began (targets planned)
    launch_finished_at: Mapped[datetime | None]

    organisation: Mapped[Organisation] = relationship(lazy="joined")
    definition: Mapped[ProcessDefinition] = relationship(lazy="raise")

    @property
    def process(self) -> CampaignProcess:
        """The launchable process this campaign runs."""
        return campaign_process(self.process_id)


class CampaignTarget(Base):
    """One cadre or organ a campaign reaches, and the one instance started for it.

    ``campaign_id``, ``organisation_id`` and ``cadre_id`` carry no foreign keys on purpose: a
    province plan writes 100,000 rows in one statement, and PostgreSQL checks foreign keys row by
    row (measured: two thirds of the plan's time).  The rows are copied from those very tables in
    that statement, and organisations and cadres are never deleted.
    """

    __tablename__ = "campaign_target"
    __table_args__ = (UniqueConstraint("campaign_id", "target_key"),
                      UniqueConstraint("instance_id"),
                      Index("ix_campaign_target_chunk", "campaign_id", "chunk"),
                      # the dashboard's counts per organisation, and its lists of people page by page
                      Index("ix_campaign_target_organisation", "campaign_id", "organisation_id", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(Integer)
    target_key: Mapped[str] = mapped_column(String(64))  # "cadre:<id>" or "organ:<id>": the idempotency key
    organisation_id: Mapped[int] = mapped_column(Integer)  # where the instance lives
    cadre_id: Mapped[int | None] = mapped_column(Integer)
    chunk: Mapped[int] = mapped_column(Integer)
    instance_id: Mapped[int | None] = mapped_column(_INSTANCE_ID, ForeignKey("process_instance.id"))
    launched_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(String(500))  # why its start failed (retried on resume)


class CampaignChunk(Base):
    """About 500 targets launched (or cancelled) by one background job, with their progress."""

    __tablename__ = "campaign_chunk"
    __table_args__ = (UniqueConstraint("campaign_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"))
    number: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    launched: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), default=CHUNK_PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    enqueued_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


# ------------------------------------------------------------------------------------- rights


def check_may_launch(actor: Actor, root: Organisation) -> None:
    """Only an organiser (or admin) of ``root`` or above may launch a campaign over its subtree."""
    if not actor.holds(LAUNCHING_ROLE, root.path):
        raise NotAllowed(f"你不是「{root.name}」或其上级组织的组织者，不能向其发起集中活动 / only an organiser of "
                         f"{root.code} or above may launch a campaign to its subtree")


def check_may_manage(actor: Actor, campaign: Campaign) -> None:
    """Cancelling or resuming a campaign takes the same right as launching it."""
    if not actor.holds(LAUNCHING_ROLE, campaign.organisation.path):
        raise NotAllowed(f"只有「{campaign.organisation.name}」或其上级组织的组织者可以管理活动「{campaign.title}」/ "
                         f"only an organiser of {campaign.organisation.code} or above may manage this campaign")


def may_view(actor: Actor, campaign: Campaign, organisation: Organisation | None = None) -> bool:
    """Whether ``actor`` may read a campaign's numbers at ``organisation`` (default: its root).

    Staff who oversee the organisation may, and so may staff below a campaign's root for the part
    of it in their own subtree (a city reads the province's campaign for its city).
    """
    org = organisation or campaign.organisation
    return is_within(org.path, campaign.organisation.path) and actor.oversees(org.path)


def home_view(actor: Actor, campaign: Campaign, session: Session) -> Organisation | None:
    """The organisation from which ``actor`` reads a campaign: its root, or their own subtree inside it."""
    if actor.oversees(campaign.organisation.path):
        return campaign.organisation
    for _role, code, path in sorted(actor.grants, key=lambda g: len(g[2])):
        if is_within(path, campaign.organisation.path):
            return by_code(session, code)
    return None


def require_view(actor: Actor, campaign: Campaign, organisation: Organisation | None = None) -> None:
    """Raise :class:`NotAllowed` unless :func:`may_view`."""
    if not may_view(actor, campaign, organisation):
        where = (organisation or campaign.organisation).name
        raise NotAllowed(f"你无权查看活动「{campaign.title}」在「{where}」的情况 / you may not see this campaign there")


# ----------------------------------------------------------------------------------- creating


def create_campaign(session: Session, actor: Actor, *, process_id: str, title: str, organisation_code: str,
                    target_kind: str, window_start: datetime, window_end: datetime, parameters: dict[str, Any],
                    now: datetime, parent_id: int | None = None) -> Campaign:
    """Create a scheduled campaign after checking rights, parameters and the parent's limits (flushed).

    Raises :class:`NotFound` (process not launchable or not deployed, organisation unknown),
    :class:`NotAllowed` (outside the organiser's subtree, or the parent's), :class:`FormInvalid`
    (each bad field, including what would raise the parent campaign's limits).
    """
    process = campaign_process(process_id)
    root = by_code(session, organisation_code)
    check_may_launch(actor, root)
    definition_id = session.scalar(select(ProcessDefinition.id).where(ProcessDefinition.process_id == process_id)
                                   .order_by(ProcessDefinition.version.desc()).limit(1))
    if definition_id is None:
        raise NotFound(f"流程「{process.name}」尚未部署 / process {process_id!r} is not deployed")
    errors = _campaign_field_errors(process, title, target_kind, window_start, window_end)
    try:
        params = normalise_parameters(process, parameters)
    except FormInvalid as invalid:
        errors += invalid.errors
        params = {}
    if errors:
        raise FormInvalid(errors)
    if parent_id is not None:
        _check_within_parent(session, campaign_by_id(session, parent_id), root, window_start, window_end,
                             process, params)
    campaign = Campaign(process_id=process_id, definition_id=definition_id, title=title.strip(),
                        window_start=window_start, window_end=window_end, organisation_id=root.id,
                        target_kind=target_kind, parameters=params, launched_by=actor.username, parent_id=parent_id,
                        status=SCHEDULED, created_at=now)
    campaign.organisation = root
    session.add(campaign)
    session.flush()
    return campaign


def _campaign_field_errors(process: CampaignProcess, title: str, target_kind: str, window_start: datetime | None,
                           window_end: datetime | None) -> list[FieldError]:
    errors = []
    if not title or not title.strip():
        errors.append(FieldError("title", "请填写活动名称 / a campaign needs a title"))
    elif len(title.strip()) > 200:
        errors.append(FieldError("title", "活动名称不能超过200字 / the title is longer than 200 characters"))
    if target_kind not in process.target_kinds:
        allowed = "、".join(TARGET_KIND_NAMES[k] for k in process.target_kinds)
        errors.append(FieldError("target_kind", f"「{process.name}」只能面向{allowed}发起 / {process.process_id} "
                                                f"targets {', '.join(process.target_kinds)}"))
    moments_ok = True
    for name, moment in (("window_start", window_start), ("window_end", window_end)):
        if moment is None or moment.tzinfo is None:
            errors.append(FieldError(name, "请填写带时区的时间 / give a time with its time zone"))
            moments_ok = False
    if moments_ok and window_start >= window_end:
        errors.append(FieldError("window_end", "活动结束时间应晚于开始时间 / the window must end after it starts"))
    return errors


def _check_within_parent(session: Session, parent: Campaign, root: Organisation, window_start: datetime,
                         window_end: datetime, process: CampaignProcess, params: dict[str, Any]) -> None:
    """A campaign under a parent stays inside it and raises nothing it set (不能层层加码)."""
    if parent.status == CANCELLED:
        raise FormInvalid([FieldError("parent_id", f"上级活动「{parent.title}」已撤销 / the parent campaign was "
                                                   "cancelled")])
    if not is_within(root.path, parent.organisation.path):
        raise NotAllowed(f"「{root.name}」不在上级活动「{parent.title}」的范围（{parent.organisation.name}）内 / "
                         f"{root.code} lies outside the parent campaign's subtree {parent.organisation.code}")
    errors = []
    if window_start < parent.window_start:
        errors.append(FieldError("window_start", f"开始时间不能早于上级活动的 {_local(parent.window_start)}（不能层层加码）"
                                                 f" / the window may not start before the parent's"))
    if window_end > parent.window_end:
        errors.append(FieldError("window_end", f"结束时间不能晚于上级活动的 {_local(parent.window_end)}（不能层层加码）"
                                               f" / the window may not end after the parent's"))
    parent_limits = {**parent.process.limits(), **process.limits()}
    errors += raised_limits(process, parent.parameters, params, parent_limits)
    if errors:
        raise FormInvalid(errors)


def _local(moment: datetime) -> str:
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")


# ------------------------------------------------------------------------------------ reading


def campaign_by_id(session: Session, campaign_id: int) -> Campaign:
    """The campaign, or :class:`NotFound`."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"集中活动 {campaign_id} 不存在 / campaign {campaign_id} does not exist")
    return campaign


def visible_campaigns(session: Session, actor: Actor, limit: int = 50, offset: int = 0,
                      status: str | None = None) -> list[Campaign]:
    """Campaigns rooted in or above a subtree the actor oversees, newest first (paginated)."""
    reach = []
    for _role, _code, path in actor.grants:
        reach.append(in_subtree(Organisation.path, path))
        reach.append(Organisation.id.in_(ancestor_ids(path)))
    if not reach:
        return []
    query = (select(Campaign).join(Organisation, Organisation.id == Campaign.organisation_id).where(or_(*reach))
             .order_by(Campaign.created_at.desc(), Campaign.id.desc()).limit(limit).offset(offset))
    if status:
        query = query.where(Campaign.status == status)
    return list(session.scalars(query))


def all_campaigns(session: Session, limit: int = 50, offset: int = 0, status: str | None = None) -> list[Campaign]:
    """Every campaign, newest first (for administrators and the command line)."""
    query = select(Campaign).order_by(Campaign.created_at.desc(), Campaign.id.desc()).limit(limit).offset(offset)
    if status:
        query = query.where(Campaign.status == status)
    return list(session.scalars(query))


def launchable_roots(session: Session, actor: Actor) -> list[Organisation]:
    """Where ``actor`` may launch (organiser or admin grants) and the organisations one level below, in tree order."""
    codes = [code for role, code, _path in actor.grants if role in (LAUNCHING_ROLE, "admin")]
    if not codes:
        return []
    granted = list(session.scalars(select(Organisation).where(Organisation.code.in_(codes))))
    below = select(Organisation).where(Organisation.parent_id.in_([o.id for o in granted]))
    found = {o.id: o for o in [*granted, *session.scalars(below)]}
    return sorted(found.values(), key=lambda o: o.path)


# ------------------------------------------------------------------------------ for rankings


def completion_by_organisation(session: Session, organisation: Organisation, since: datetime,
                               until: datetime) -> dict[int, tuple[int, int]]:
    """(done, total) instances of campaigns launched in [since, until), by organisation id.

    Every organisation of ``organisation``'s subtree has an entry; an instance counts at the
    organisation it was started for and at every one above it inside the subtree.  Cancelled
    campaigns do not count; "done" is a completed instance.
    """
    paths = dict(session.execute(select(Organisation.id, Organisation.path)
                                 .where(in_subtree(Organisation.path, organisation.path))).all())
    counted = (select(CampaignTarget.organisation_id, func.count(CampaignTarget.id),
                      func.count(ProcessInstance.id).filter(ProcessInstance.status == "completed"))
               .join(Campaign, Campaign.id == CampaignTarget.campaign_id)
               .join(ProcessInstance, ProcessInstance.id == CampaignTarget.instance_id)
               .where(Campaign.launched_at >= since, Campaign.launched_at < until, Campaign.status != CANCELLED)
               .group_by(CampaignTarget.organisation_id))
    if organisation.parent_id is not None:  # ids, not a path join: see campaign_dashboard._in_view
        counted = counted.where(CampaignTarget.organisation_id.in_(list(paths)))
    direct = {org_id: (done, total) for org_id, total, done in session.execute(counted) if org_id in paths}
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for org_id, (done, total) in direct.items():
        for ancestor in ancestor_ids(paths[org_id]):
            if ancestor in paths:
                totals[ancestor][0] += done
                totals[ancestor][1] += total
    return {org_id: tuple(totals[org_id]) if org_id in totals else (0, 0) for org_id in paths}
