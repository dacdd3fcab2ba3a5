"""The coordinators' wish-pool board (心愿池): pooled wishes, where they came from, and each wish's history.

A pooled wish is an open ``Task_pool`` / ``Task_pool_province`` row of the ``human_task``
projection.  A coordinator's *level* is the organisations where they hold the role (a wish is
pooled where the process put it: the nearest organisation with a coordinator); their *subtree*
is everything under those.  The list reads only ``human_task`` through its
``(candidate_role, organisation_id, state)`` index, a page at a time (keyset on the task id:
oldest pooled first); what a row shows besides (title, the youth, the cadre who could not fulfil
it and why, since when it is pooled, where it climbed from) is read for that page only, with one
query per kind of fact, from the start event, the audit trail and the earlier pool tasks.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from engine import Engine
from engine.errors import NotAllowed, NotFound
from engine.models import AuditEvent, HumanTask, ProcessInstance
from engine.runtime import CompletedTask

from .inbox import can_view_task, urgency
from .models import Organisation, User
from .organisations import in_subtree
from .phrases import N_, Phrase, phrase
from .roles import Actor
from .wishes import POOL_TASKS, PROCESS_ID

ROLE = "coordinator"
SCOPES = {"level": "本级心愿池", "subtree": "本级及下级心愿池"}
SHOWS = {"all": "全部", "unclaimed": "待认领", "mine": "我认领的", "overdue": "已逾期"}
# Why a wish left its cadre, in plain words (the process's ``pool_reason``, with giving up told apart).
REASONS_ZH = {"beyond_means": "超出团干部个人能力范围", "no_reply": "团干部3天内未回复",
              "fulfil_overdue": "团干部答应后14天内未能实现", "gave_up": "团干部经努力仍无法实现"}
# The pool form's fields that say who or what will fulfil the wish (the rest say how it was fulfilled).
RESOURCE_FIELDS = ("partner", "donor", "department", "resource")
HISTORY_LIMIT = 500
COUNT_CAP = 999


@dataclass(frozen=True)
class Origin:
    """Where a pooled wish came from: the cadre the youth asked, and why it left them."""

    cadre_username: str | None
    cadre_name: str | None
    organisation_code: str | None
    organisation_name: str | None
    reason: str | None           # a key of REASONS_ZH
    cadre_words: str | None      # the cadre's reply or reason, as written to the youth

    @property
    def reason_text(self) -> str:
        """The reason in plain words."""
        return REASONS_ZH.get(self.reason or "", "")


@dataclass(frozen=True)
class PooledWish:
    """One wish on the board: its pool task and what a coordinator needs to know about it."""

    task: HumanTask
    business_key: str | None
    title: str | None
    description: str | None
    youth_name: str | None
    pool_name: str | None          # the organisation whose pool holds it now
    holder_name: str | None        # the coordinator who claimed it, if any
    pooled_since: datetime         # when it first entered any pool
    escalated_from: tuple[str, ...]  # the pools it climbed from, first first
    origin: Origin
    level: str | None              # "overdue", "due_soon" or None (workflows.inbox.urgency)
    may_act: bool                  # the viewer holds the coordinator role over its pool

    @property
    def open(self) -> bool:
        """Whether the pool task is still open (not fulfilled, escalated or withdrawn)."""
        return self.task.state in HumanTask.OPEN_STATES


@dataclass(frozen=True)
class BoardPage:
    """A page of the board and where the next one starts."""

    wishes: list[PooledWish]
    next_after: int | None


@dataclass(frozen=True)
class HistoryLine:
    """One step of a wish's history, in plain words (``at`` is shown in Beijing time by the page)."""

    at: datetime
    phrase: Phrase  # workflows.phrases
    kind: str

    @property
    def text(self) -> str:
        """The step in Chinese."""
        return str(self.phrase)


def age_text(since: datetime, now: datetime) -> str:
    """How long since ``since``, as a coordinator reads it: "不到1天", "3天"."""
    days = (now - since).days
    return "不到1天" if days < 1 else f"{days}天"


def _coordinator_grants(actor: Actor) -> list[tuple[str, str]]:
    grants = [(code, path) for role, code, path in actor.grants if role == ROLE]
    if not grants:
        raise NotAllowed("只有协调员可以查看心愿池 / only a coordinator may see the wish pool")
    return grants


def _pool_tasks():
    return select(HumanTask).where(HumanTask.candidate_role == ROLE, HumanTask.process_id == PROCESS_ID,
                                   HumanTask.bpmn_id.in_(POOL_TASKS), HumanTask.state.in_(HumanTask.OPEN_STATES))


def _scope_codes(session: Session, actor: Actor, scope: str) -> list[str]:
    """The organisations whose pools the board shows: where the actor holds the role, or all their subtrees."""
    grants = _coordinator_grants(actor)
    if scope != "subtree":
        return sorted({code for code, _p in grants})
    return list(session.scalars(select(Organisation.code).where(
        or_(*[in_subtree(Organisation.path, path) for _c, path in grants]))))


def _scoped(query, codes: list[str]):
    return query.where(HumanTask.organisation_id.in_(codes))


def _shown(query, actor: Actor, show: str, now: datetime):
    if show == "unclaimed":
        return query.where(HumanTask.assignee.is_(None))
    if show == "mine":
        return query.where(HumanTask.assignee == actor.username)
    if show == "overdue":
        return query.where(HumanTask.due_at < now)
    return query


def board(session: Session, actor: Actor, now: datetime, scope: str = "level", show: str = "all",
          limit: int = 20, after_id: int = 0) -> BoardPage:
    """A page of the pooled wishes ``actor`` coordinates, oldest first; ``next_after`` starts the next page.

    ``scope`` is "level" (the pools of the organisations where they hold the role) or "subtree"
    (those and every pool below); ``show`` narrows to "unclaimed", "mine" or "overdue" ones.
    Raises :class:`NotAllowed` for someone who is no coordinator.
    """
    query = _shown(_scoped(_pool_tasks(), _scope_codes(session, actor, scope)), actor, show, now)
    # "id + 0": read the open coordinator tasks of these organisations through the
    # (candidate_role, organisation_id, state) index and sort them, rather than walk the primary key
    # from the oldest task ever written and filter (the planner's choice when it guesses many
    # matches, which costs the whole history of the table when pooled wishes are recent).
    tasks = list(session.scalars(query.where(HumanTask.id > after_id).order_by(HumanTask.id + 0).limit(limit + 1)))
    shown = tasks[:limit]
    return BoardPage(describe(session, actor, shown, now), shown[-1].id if len(tasks) > limit else None)


def board_counts(session: Session, actor: Actor, now: datetime, scope: str = "level",
                 cap: int = COUNT_CAP) -> dict[str, int]:
    """How many pooled wishes the board holds in ``scope``: in all, unclaimed and overdue, each counted to ``cap + 1``.

    (A page says "999+" past the cap: counting a province's whole pool exactly costs a scan nobody reads.)
    """
    base = _scoped(_pool_tasks(), _scope_codes(session, actor, scope)).with_only_columns(HumanTask.id)
    counts = {}
    for name, query in (("all", base), ("unclaimed", base.where(HumanTask.assignee.is_(None))),
                        ("overdue", base.where(HumanTask.due_at < now))):
        counts[name] = session.scalar(select(func.count()).select_from(query.limit(cap + 1).subquery())) or 0
    return counts


def pooled_wish(session: Session, actor: Actor, task_id: int, now: datetime) -> PooledWish:
    """One pool task (open or not) as the board shows it, if ``actor`` may see it.

    :class:`NotFound` for a task that is no pool task of a micro-wish; :class:`NotAllowed` unless
    the task is in a subtree ``actor`` oversees, or is or was theirs (``can_view_task``).
    """
    task = session.get(HumanTask, task_id)
    if task is None or task.process_id != PROCESS_ID or task.bpmn_id not in POOL_TASKS:
        raise NotFound(f"心愿池中没有编号为 {task_id} 的心愿 / no pooled wish {task_id}")
    if not can_view_task(session, actor, task):
        raise NotAllowed(f"这条心愿不在你协调的心愿池中 / wish {task_id} is not in a pool you coordinate")
    return describe(session, actor, [task], now)[0]


def current_pool_task(session: Session, instance_id: int) -> HumanTask | None:
    """The open pool task of a wish, if it is in a pool now."""
    return session.scalar(select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                  HumanTask.bpmn_id.in_(POOL_TASKS),
                                                  HumanTask.state.in_(HumanTask.OPEN_STATES)).limit(1))


# ----------------------------------------------------------------------------------- actions

def open_wish(session: Session, actor: Actor, task_id: int, now: datetime) -> PooledWish:
    """A pooled wish still in its pool, if ``actor`` may see it (checked before a form's files are stored).

    :class:`NotFound` once it has left the pool (fulfilled, escalated or withdrawn); see :func:`pooled_wish`.
    """
    wish = pooled_wish(session, actor, task_id, now)
    if not wish.open:
        raise NotFound(f"这条心愿已不在{wish.pool_name or ''}心愿池中（已实现、上移或撤回）/ wish {task_id} has left "
                       "this pool (fulfilled, escalated or withdrawn)")
    return wish


def claim(session: Session, engine: Engine, actor: Actor, task_id: int) -> HumanTask:
    """The coordinator takes a pooled wish on; the caller commits (the engine's policy decides who may)."""
    open_wish(session, actor, task_id, engine.clock.now())
    return engine.claim(session, task_id, actor.username)


def give_back(session: Session, engine: Engine, actor: Actor, task_id: int) -> HumanTask:
    """The coordinator puts a wish they claimed back in the pool for a colleague; the caller commits."""
    open_wish(session, actor, task_id, engine.clock.now())
    return engine.unclaim(session, task_id, actor.username)


def fulfil(session: Session, engine: Engine, actor: Actor, task_id: int, data: dict[str, Any]) -> CompletedTask:
    """The coordinator records the matched resource and the fulfilment (the pool form); the caller commits.

    The form (bpmn/micro_wish.pool.json) names who or what fulfilled the wish (a partner, donor or
    department, and the resource) and how, with evidence (the stored names of files uploaded first, linked
    to the instance by the completion); it is validated by the engine.  The youth is then asked to confirm.
    """
    open_wish(session, actor, task_id, engine.clock.now())
    return engine.complete_task(session, task_id, data, actor.username)


# ------------------------------------------------------------------------- reading the facts

def _names(session: Session, usernames: set[str]) -> dict[str, str]:
    usernames.discard(None)  # type: ignore[arg-type]
    if not usernames:
        return {}
    return dict(session.execute(select(User.username, User.display_name).where(User.username.in_(usernames))).all())


def _org_names(session: Session, codes: set[str]) -> dict[str, str]:
    codes.discard(None)  # type: ignore[arg-type]
    if not codes:
        return {}
    return dict(session.execute(select(Organisation.code, Organisation.name).where(Organisation.code.in_(codes))).all())


def _origin_events(session: Session, instance_ids: list[int]) -> dict[int, list[AuditEvent]]:
    """The start event and the cadre's steps (replied, gave up, let a deadline pass) of each instance."""
    rows = session.scalars(select(AuditEvent).where(
        AuditEvent.instance_id.in_(instance_ids),
        or_(AuditEvent.kind == "started",
            and_(AuditEvent.kind.in_(("task_completed", "escalated")),
                 AuditEvent.element_id.in_(("Task_reply", "Task_fulfil"))))).order_by(AuditEvent.id))
    events: dict[int, list[AuditEvent]] = {}
    for event in rows:
        events.setdefault(event.instance_id, []).append(event)
    return events


def _reason(events: list[AuditEvent]) -> tuple[str | None, str | None]:
    """(reason, the cadre's words) from the last cadre step that sent the wish to the pool."""
    reason = words = None
    for event in events:
        after = event.after or {}
        if event.kind == "escalated":
            reason, words = ("no_reply" if event.element_id == "Task_reply" else "fulfil_overdue"), None
        elif event.kind == "task_completed" and event.element_id == "Task_reply" \
                and after.get("reply_decision") == "beyond_means":
            reason, words = "beyond_means", after.get("reply_text")
        elif event.kind == "task_completed" and event.element_id == "Task_fulfil" \
                and after.get("fulfil_outcome") == "beyond_means":
            reason, words = "gave_up", after.get("reason")
    return reason, words


def describe(session: Session, actor: Actor, tasks: list[HumanTask], now: datetime) -> list[PooledWish]:
    """Board rows for pool tasks (a page): a fixed number of queries, whatever the page size."""
    if not tasks:
        return []
    instance_ids = sorted({task.instance_id for task in tasks})
    instance_rows = session.execute(select(ProcessInstance.id, ProcessInstance.organisation_id,
                                           ProcessInstance.business_key)
                                    .where(ProcessInstance.id.in_(instance_ids))).all()
    instances = {row.id: row.organisation_id for row in instance_rows}
    keys = {row.id: row.business_key for row in instance_rows}
    pool_rows = session.execute(select(HumanTask.instance_id, HumanTask.id, HumanTask.organisation_id,
                                       HumanTask.created_at)
                                .where(HumanTask.instance_id.in_(instance_ids), HumanTask.bpmn_id.in_(POOL_TASKS))
                                .order_by(HumanTask.id)).all()
    pools: dict[int, list] = {}
    for row in pool_rows:
        pools.setdefault(row.instance_id, []).append(row)
    events = _origin_events(session, instance_ids)
    starts = {iid: next((e.after or {} for e in evs if e.kind == "started"), {}) for iid, evs in events.items()}
    people = _names(session, {s.get(k) for s in starts.values() for k in ("youth_assignee", "cadre_assignee")}
                    | {task.assignee for task in tasks})
    orgs = _org_names(session, {task.organisation_id for task in tasks} | set(instances.values())
                      | {row.organisation_id for row in pool_rows})
    org_paths = dict(session.execute(select(Organisation.code, Organisation.path).where(
        Organisation.code.in_({task.organisation_id for task in tasks}))).all())
    wishes = []
    for task in tasks:
        start = starts.get(task.instance_id, {})
        reason, words = _reason(events.get(task.instance_id, []))
        cadre = start.get("cadre_assignee")
        home = instances.get(task.instance_id)
        origin = Origin(cadre, people.get(cadre), home, orgs.get(home), reason, words)
        earlier = [row for row in pools.get(task.instance_id, []) if row.id < task.id]
        first = earlier[0].created_at if earlier else task.created_at
        open_task = task.state in HumanTask.OPEN_STATES
        wishes.append(PooledWish(
            task=task, business_key=keys.get(task.instance_id), title=start.get("wish_title"),
            description=start.get("wish_description"), youth_name=people.get(start.get("youth_assignee")),
            pool_name=orgs.get(task.organisation_id), holder_name=people.get(task.assignee), pooled_since=first,
            escalated_from=tuple(orgs.get(row.organisation_id, row.organisation_id) for row in earlier),
            origin=origin, level=urgency(task, now) if open_task else None,
            may_act=open_task and actor.holds(ROLE, org_paths.get(task.organisation_id))))
    return wishes


# ----------------------------------------------------------------------------------- history

RESOURCE_PHRASES = (("partner", N_("合作单位：%(value)s")), ("donor", N_("爱心捐赠人：%(value)s")),
                    ("department", N_("职能部门：%(value)s")), ("resource", N_("资源：%(value)s")))


def _resources(after: dict[str, Any]) -> tuple[Phrase, ...]:
    return tuple(phrase(template, value=after[key]) for key, template in RESOURCE_PHRASES if after.get(key))


def _quoting(with_words: str, without_words: str, words: Any, **values: Any) -> Phrase:
    """``with_words`` quoting what someone wrote (as ``%(words)s``) when they wrote something, else ``without_words``."""
    return phrase(with_words, words=words, **values) if words else phrase(without_words, **values)


REMINDERS = {"Task_reply": N_("提醒团干部尽快回复"), "Task_fulfil": N_("提醒团干部3天后到期"),
             "Task_pool": N_("提醒%(pool)s心愿池协调员3天后到期"),
             "Task_pool_province": N_("提醒省级协调员：心愿已在省级心愿池14天")}


def _history_phrase(event: AuditEvent, who: str, orgs: dict[str, str], tasks: dict[str, HumanTask],
                    start: dict[str, Any]) -> Phrase | None:
    """One audit event in plain words, or ``None`` for the engine's own bookkeeping."""
    after, kind, element = event.after or {}, event.kind, event.element_id
    task = tasks.get(event.task_id or "")
    pool = orgs.get(task.organisation_id, task.organisation_id) if task is not None else ""
    if kind == "started":
        return phrase(N_("青年%(who)s提出微心愿「%(title)s」"), who=who, title=after.get("wish_title", ""))
    if kind == "task_created" and element == "Task_reply":
        return phrase(N_("心愿交给团干部%(cadre)s，等待回复"),
                      cadre=after.get("assignee_name") or start.get("cadre_name") or "")
    if kind == "task_created" and element in POOL_TASKS:
        return phrase(N_("心愿进入%(pool)s心愿池，等待协调员认领"), pool=pool)
    if kind == "task_completed" and element == "Task_reply" and event.actor:
        if after.get("reply_decision") == "will_fulfil":
            return _quoting(N_("团干部%(who)s答应帮助实现：“%(words)s”"), N_("团干部%(who)s答应帮助实现"),
                            after.get("reply_text"), who=who)
        return _quoting(N_("团干部%(who)s回复超出个人能力范围，心愿转入心愿池：“%(words)s”"),
                        N_("团干部%(who)s回复超出个人能力范围，心愿转入心愿池"), after.get("reply_text"), who=who)
    if kind == "task_completed" and element == "Task_fulfil" and event.actor:
        if after.get("fulfil_outcome") == "fulfilled":
            return phrase(N_("团干部%(who)s已帮助实现心愿，等待青年确认"), who=who)
        return _quoting(N_("团干部%(who)s经努力仍无法实现，心愿转入心愿池：“%(words)s”"),
                        N_("团干部%(who)s经努力仍无法实现，心愿转入心愿池"), after.get("reason"), who=who)
    if kind == "task_completed" and element in POOL_TASKS and event.actor:
        matched = _resources(after)
        if matched:
            return phrase(N_("协调员%(who)s在%(pool)s心愿池对接资源并实现心愿（%(resources)s），等待青年确认"),
                          who=who, pool=pool, resources=matched)
        return phrase(N_("协调员%(who)s在%(pool)s心愿池对接资源并实现心愿，等待青年确认"), who=who, pool=pool)
    if kind == "escalated" and element == "Task_reply":
        return phrase(N_("团干部3天内未回复，心愿转入心愿池"))
    if kind == "escalated" and element == "Task_fulfil":
        return phrase(N_("团干部答应后14天内未能实现，心愿转入心愿池"))
    if kind == "escalated" and element in POOL_TASKS:
        return phrase(N_("%(pool)s心愿池14天内未能实现，心愿上移到上一级心愿池"), pool=pool)
    if kind == "reminded":
        template = REMINDERS.get(element or "")
        return phrase(template, pool=pool) if template else None
    if kind == "claimed" and element in POOL_TASKS:
        return phrase(N_("协调员%(who)s认领了这条心愿"), who=who)
    if kind == "unclaimed" and element in POOL_TASKS:
        return phrase(N_("协调员%(who)s退回，心愿回到%(pool)s心愿池等待认领"), who=who, pool=pool)
    if kind == "reassigned":
        return phrase(N_("转交给%(assignee)s"), assignee=after.get("assignee_name") or after.get("assignee") or "")
    if kind == "message" and event.detail == "wish_confirmed":
        rating = (after.get("payload") or {}).get("rating")
        if rating:
            return phrase(N_("青年%(who)s确认心愿已实现，评价%(rating)s星"), who=who, rating=rating)
        return phrase(N_("青年%(who)s确认心愿已实现"), who=who)
    if kind == "message" and event.detail == "wish_withdrawn":
        return _quoting(N_("青年%(who)s撤回了心愿：“%(words)s”"), N_("青年%(who)s撤回了心愿"),
                        (after.get("payload") or {}).get("reason"), who=who)
    if kind == "timer_fired" and element == "Timer_auto_confirm":
        return phrase(N_("青年7天内未确认，自动确认心愿已实现"))
    if kind == "cancelled":
        return _quoting(N_("管理员取消了这条心愿：“%(words)s”"), N_("管理员取消了这条心愿"), event.detail)
    if kind == "error":
        return phrase(N_("办理出错，等待管理员处理"))
    return None


def wish_history(session: Session, instance_id: int, limit: int = HISTORY_LIMIT) -> list[HistoryLine]:
    """The history of one wish in plain words, oldest first (the caller has checked who may read it)."""
    events = list(session.scalars(select(AuditEvent).where(AuditEvent.instance_id == instance_id)
                                  .order_by(AuditEvent.id).limit(limit)))
    tasks = {task.task_id: task for task in session.scalars(select(HumanTask).where(
        HumanTask.instance_id == instance_id))}
    start = next((e.after or {} for e in events if e.kind == "started"), {})
    people = _names(session, {e.actor for e in events} | {start.get("cadre_assignee")}
                    | {(e.after or {}).get("assignee") for e in events if e.kind in ("task_created", "reassigned")})
    orgs = _org_names(session, {task.organisation_id for task in tasks.values()})
    start = dict(start, cadre_name=people.get(start.get("cadre_assignee"), start.get("cadre_assignee")))
    lines = []
    for event in events:
        after = event.after or {}
        if event.kind in ("task_created", "reassigned") and after.get("assignee"):
            event_after = dict(after, assignee_name=people.get(after["assignee"], after["assignee"]))
        else:
            event_after = after
        who = people.get(event.actor or "", event.actor or "")
        said = _history_phrase(_with_after(event, event_after), who, orgs, tasks, start)
        if said is not None:
            lines.append(HistoryLine(event.at, said, event.kind))
    return lines


@dataclass(frozen=True)
class _EventView:
    """An audit event with its ``after`` enriched for wording (audit rows themselves are read-only)."""

    at: datetime
    actor: str | None
    kind: str
    task_id: str | None
    element_id: str | None
    after: dict[str, Any]
    detail: str | None


def _with_after(event: AuditEvent, after: dict[str, Any]) -> Any:
    return _EventView(event.at, event.actor, event.kind, event.task_id, event.element_id, after, event.detail)
