"""Who may do what where: role grants, the actor behind a request, and the engine's hooks.

A staff role (organiser, coordinator, inspector, admin) is held at an organisation and is valid
for its whole subtree.  "cadre" and "youth" follow from the person's records.  Role keys are the
BPMN lane names, so the same words decide who gets a task and who may act on it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, bindparam, event, select
from sqlalchemy.orm import Session, SessionTransaction, aliased

from engine.assignment import Assignment, TaskContext
from engine.errors import NotAllowed

from .models import STAFF_ROLES, Cadre, Organisation, RoleGrant, User, Youth
from .organisations import ancestor_ids, is_within

ROLE_NAMES_ZH = {"organiser": "组织者", "coordinator": "协调员", "inspector": "核查员", "admin": "管理员",
                 "cadre": "团干部", "youth": "青年"}


@dataclass(frozen=True)
class Actor:
    """A signed-in person as the rules see them: their roles, each with the subtree it covers."""

    username: str
    display_name: str
    user_id: int | None = None
    organisation_code: str | None = None
    organisation_path: str | None = None
    grants: tuple[tuple[str, str, str], ...] = ()  # (role, organisation code, organisation path)
    cadre_id: int | None = None
    youth_id: int | None = None
    roles: frozenset[str] = field(default_factory=frozenset)

    def holds(self, role: str, org_path: str | None) -> bool:
        """Whether the actor holds ``role`` (or admin) at ``org_path`` or above it."""
        if org_path is None:
            return False
        return any((granted == role or granted == "admin") and is_within(org_path, path)
                   for granted, _code, path in self.grants)

    def oversees(self, org_path: str | None) -> bool:
        """Whether any staff role of the actor covers ``org_path``."""
        return org_path is not None and any(is_within(org_path, path) for _r, _c, path in self.grants)

    def role_orgs(self, role: str) -> list[str]:
        """Codes of the organisations where the actor holds ``role`` directly."""
        return [code for granted, code, _path in self.grants if granted == role]


def load_actor(session: Session, username: str) -> Actor | None:
    """The :class:`Actor` for a username, or ``None`` for an unknown or inactive account."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        return None
    return actor_of(session, user)


# The user's cadre and youth records (a user has at most one of each), as columns beside the user.
_CADRE_ID = select(Cadre.id).where(Cadre.user_id == User.id).correlate(User).scalar_subquery()
_YOUTH_ID = select(Youth.id).where(Youth.user_id == User.id).correlate(User).scalar_subquery()
_USER_WITH_PERSON_IDS = select(User, _CADRE_ID, _YOUTH_ID).where(User.id == bindparam("user_id"))


def user_with_person_ids(session: Session, user_id: int) -> tuple[User, tuple[int | None, int | None]] | None:
    """The user (with their organisation and grants) and their (cadre id, youth id); ``None`` if unknown.

    Two statements, the user's and its grants': all that :func:`actor_of` needs, given the ids.
    """
    row = session.execute(_USER_WITH_PERSON_IDS, {"user_id": user_id}).first()
    return None if row is None else (row[0], (row[1], row[2]))


def actor_of(session: Session, user: User, person_ids: tuple[int | None, int | None] | None = None) -> Actor:
    """Build the :class:`Actor` of a loaded user.

    ``person_ids`` is (cadre id, youth id) as :func:`user_with_person_ids` read them; without it
    they are read here (one statement).
    """
    grants = tuple((g.role, g.organisation.code, g.organisation.path) for g in user.grants)
    if person_ids is None:
        person_ids = session.execute(select(_CADRE_ID, _YOUTH_ID).where(User.id == user.id)).one()
    cadre_id, youth_id = person_ids
    roles = {role for role, _c, _p in grants}
    if cadre_id is not None:
        roles.add("cadre")
    if youth_id is not None:
        roles.add("youth")
    org = user.organisation
    return Actor(username=user.username, display_name=user.display_name, user_id=user.id,
                 organisation_code=org.code if org else None, organisation_path=org.path if org else None,
                 grants=grants, cadre_id=cadre_id, youth_id=youth_id, roles=frozenset(roles))


_ACTORS_KEY = "lianqing_actors"  # Session.info: the actors read in the session's current transaction


def actor_in_transaction(session: Session, username: str) -> Actor | None:
    """:func:`load_actor`, read at most once per database transaction of ``session``.

    A request asks the task policy about the same person more than once (a completion is checked
    before its evidence is stored and again by the engine).  The answer is kept in the session
    until its transaction ends, so a role granted or revoked elsewhere counts from the next one.
    """
    actors = session.info.setdefault(_ACTORS_KEY, {})
    if username not in actors:
        actors[username] = load_actor(session, username)
    return actors[username]


def remember_actor(session: Session, actor: Actor) -> None:
    """Let :func:`actor_in_transaction` answer with ``actor`` until the session's transaction ends.

    For a caller that has read ``actor`` for the work at hand (the web layer: the signed-in person,
    once per request).
    """
    session.info.setdefault(_ACTORS_KEY, {})[actor.username] = actor


@event.listens_for(Session, "after_transaction_end")
def _forget_actors(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction, not a savepoint inside it
        session.info.pop(_ACTORS_KEY, None)


@event.listens_for(Session, "after_flush")
def _forget_actors_on_change(session: Session, _context) -> None:
    # A role granted (or an account changed) in this very transaction counts at once for the policy.
    if session.info.get(_ACTORS_KEY) and any(isinstance(row, (User, RoleGrant, Cadre, Youth)) for row in
                                             (*session.new, *session.dirty, *session.deleted)):
        session.info.pop(_ACTORS_KEY, None)


def grant_role(session: Session, user: User, role: str, organisation: Organisation) -> RoleGrant:
    """Give ``user`` a staff role at ``organisation`` (idempotent)."""
    if role not in STAFF_ROLES:
        raise ValueError(f"未知角色 {role!r} / unknown role; one of {', '.join(STAFF_ROLES)}")
    existing = session.scalar(select(RoleGrant).where(RoleGrant.user_id == user.id, RoleGrant.role == role,
                                                      RoleGrant.organisation_id == organisation.id))
    if existing is not None:
        return existing
    grant = RoleGrant(user_id=user.id, role=role, organisation_id=organisation.id)
    session.add(grant)
    session.flush()
    return grant


def holders(session: Session, role: str, organisation: Organisation) -> list[User]:
    """The users holding ``role`` directly at ``organisation``."""
    return list(session.scalars(select(User).join(RoleGrant, RoleGrant.user_id == User.id)
                                .where(RoleGrant.role == role, RoleGrant.organisation_id == organisation.id,
                                       User.active.is_(True)).order_by(User.username)))


def nearest_holding_organisation(session: Session, role: str, organisation: Organisation) -> Organisation | None:
    """The deepest organisation at or above ``organisation`` where someone holds ``role``."""
    return session.scalar(select(Organisation).join(RoleGrant, RoleGrant.organisation_id == Organisation.id)
                          .where(RoleGrant.role == role, Organisation.id.in_(ancestor_ids(organisation.path)))
                          .order_by(Organisation.depth.desc()).limit(1))


class LeagueAssignmentResolver:
    """The engine's assignment hook for the league.

    - ``cadre`` and ``youth`` lanes go to the person the data names (``<lane>_assignee``, or the
      task property ``assignee``), at the instance's organisation;
    - staff lanes go to the nearest organisation at or above the instance's (or the one the task
      property ``organisation`` names) where someone holds the role, so a county without a
      coordinator passes its wishes to the city's;
    - a named assignee always wins.
    """

    def resolve(self, context: TaskContext) -> Assignment:
        """Return the assignment of one new task."""
        props, lane, session = context.properties, context.lane, context.session
        if props.get("assignee"):  # the property decides, even when it says None (an open task)
            assignee = context.evaluate(props["assignee"])
        else:
            assignee = context.data.get(f"{lane}_assignee") if lane else None
        org_code = context.evaluate(props["organisation"]) if props.get("organisation") else context.organisation_id
        org_code = str(org_code) if org_code is not None else None
        if lane in STAFF_ROLES and org_code and session is not None:
            org_code = self._holding_code(session, lane, org_code, context.lookups) or org_code
        return Assignment(candidate_role=lane, organisation_id=org_code,
                          assignee=str(assignee) if assignee is not None else None)


    @staticmethod
    def _holding_code(session: Session, role: str, org_code: str, lookups: dict[Any, Any] | None) -> str | None:
        """The code of the deepest organisation at or above ``org_code`` where someone holds ``role``.

        One query (the organisation and its nearest holder together), asked once per role and
        organisation in one engine operation: the answer is kept in ``lookups``, which the engine
        drops when the operation ends and empties before any service task runs.
        """
        key = ("nearest_holder", role, org_code)
        if lookups is not None and key in lookups:
            return lookups[key]
        code = session.scalar(_NEAREST_HOLDER, {"role": role, "code": org_code})
        if lookups is not None:
            lookups[key] = code
        return code


_TARGET, _HOLDER = aliased(Organisation), aliased(Organisation)
# The holder's path is a prefix of the target's ("/1/7/" of "/1/7/42/"): it is the target or above it.
_NEAREST_HOLDER = (select(_HOLDER.code).select_from(_TARGET)
                   .join(_HOLDER, _TARGET.path.startswith(_HOLDER.path))
                   .join(RoleGrant, and_(RoleGrant.organisation_id == _HOLDER.id, RoleGrant.role == bindparam("role")))
                   .where(_TARGET.code == bindparam("code")).order_by(_HOLDER.depth.desc()).limit(1))


class LeagueTaskPolicy:
    """The engine's permission hook: who may claim, complete or reassign a task.

    - the system (actor ``None``) may do anything;
    - a task assigned to someone belongs to them; an admin over its organisation may reassign it;
    - an unassigned task may be taken by a holder of its candidate role at or above its organisation,
      or, for the ``cadre`` role, by any cadre inside its organisation.
    """

    def check(self, session: Any, actor: str | None, task: Any, action: str) -> None:
        """Raise :class:`NotAllowed` with a message a person can act on."""
        if actor is None:
            return
        who = actor_in_transaction(session, actor)
        if who is None:
            raise NotAllowed(f"账号 {actor} 不存在或已停用 / account {actor} does not exist or is disabled")
        if task.assignee is not None and task.assignee == actor:
            return
        org_path = _org_path(session, task.organisation_id)
        if task.assignee is not None:
            if action == "reassign" and who.holds("admin", org_path):
                return
            raise NotAllowed(f"任务「{task.name}」已分配给 {task.assignee}，你不能办理 / task '{task.name}' is "
                             f"assigned to {task.assignee}; {actor} may not {action} it")
        role = task.candidate_role
        if role in STAFF_ROLES and who.holds(role, org_path):
            return
        # An open cadre task (e.g. a question in the 英雄帖 area) is for any cadre inside that organisation.
        if role == "cadre" and who.cadre_id is not None and org_path is not None \
                and who.organisation_path is not None and is_within(who.organisation_path, org_path):
            return
        role_zh = ROLE_NAMES_ZH.get(role or "", role or "")
        raise NotAllowed(f"只有「{task.organisation_id}」及上级组织的{role_zh}可以办理任务「{task.name}」/ only a "
                         f"{role} of {task.organisation_id} or above may {action} task '{task.name}'")


def _org_path(session: Session, code: str | None) -> str | None:
    if code is None:
        return None
    return session.scalar(select(Organisation.path).where(Organisation.code == code))
