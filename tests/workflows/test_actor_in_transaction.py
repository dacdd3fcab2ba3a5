"""The task policy reads a person's roles at most once per database transaction, and never longer.

``actor_in_transaction`` keeps what it read in the session until the transaction ends (commit or
rollback, not a savepoint); a role revoked and committed elsewhere counts in the next transaction.
SQLite and PostgreSQL.
"""
from __future__ import annotations

import pytest
from sqlalchemy import delete, event, select

from engine.errors import NotAllowed
from engine.models import HumanTask
from workflows.models import RoleGrant, User
from workflows.roles import LeagueTaskPolicy, actor_in_transaction, actor_of, load_actor, remember_actor

# A real (unsaved) row of the projection: offered to the inspectors at or above qd-sn.
VERIFY = dict(name="核实活动", assignee=None, candidate_role="inspector", organisation_id="qd-sn")


def counted(sql_engine):
    """A list that grows by one per statement run on ``sql_engine``."""
    seen: list[str] = []
    event.listen(sql_engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    return seen


def revoke_all(sessions, username: str) -> None:
    with sessions() as other:
        user_id = other.scalar(select(User.id).where(User.username == username))
        other.execute(delete(RoleGrant).where(RoleGrant.user_id == user_id))
        other.commit()


def test_an_actor_is_read_once_per_transaction(sessions, sql_engine, league):
    statements = counted(sql_engine)
    with sessions() as session:
        first = actor_in_transaction(session, "S_insp")
        read = len(statements)
        assert read >= 1 and "inspector" in first.roles
        assert actor_in_transaction(session, "S_insp") is first and len(statements) == read
        assert actor_in_transaction(session, "nobody") is None  # unknown accounts are kept as such too
        assert actor_in_transaction(session, "nobody") is None
        session.commit()
        again = actor_in_transaction(session, "S_insp")
        assert again is not first and again == first and len(statements) > read + 1


def test_a_role_revoked_elsewhere_counts_from_the_next_transaction(sessions, league):
    policy = LeagueTaskPolicy()
    with sessions() as session:
        policy.check(session, "S_insp", HumanTask(**VERIFY), "claim")  # allowed: inspector at qd-sn
        revoke_all(sessions, "S_insp")
        policy.check(session, "S_insp", HumanTask(**VERIFY), "claim")  # the same transaction: as it began
        session.rollback()
        with pytest.raises(NotAllowed, match="inspector"):
            policy.check(session, "S_insp", HumanTask(**VERIFY), "claim")
    with sessions() as session:
        assert load_actor(session, "S_insp").grants == ()


def test_a_savepoint_keeps_what_the_transaction_read(sessions, sql_engine, league):
    statements = counted(sql_engine)
    with sessions() as session:
        first = actor_in_transaction(session, "zhang")
        with session.begin_nested():
            session.execute(select(1))
        read = len(statements)
        assert actor_in_transaction(session, "zhang") is first and len(statements) == read


def test_a_remembered_actor_is_used_until_the_transaction_ends(sessions, sql_engine, league):
    statements = counted(sql_engine)
    with sessions() as session:
        user = session.scalar(select(User).where(User.username == "S_org"))
        handed = actor_of(session, user)
        remember_actor(session, handed)
        read = len(statements)
        assert actor_in_transaction(session, "S_org") is handed and len(statements) == read
        session.commit()
        assert actor_in_transaction(session, "S_org") is not handed and len(statements) > read


def test_a_disabled_account_is_refused_even_for_its_own_task(sessions, league):
    with sessions() as session:
        session.scalar(select(User).where(User.username == "zhang")).active = False
        session.commit()
        own = HumanTask(**dict(VERIFY, candidate_role="cadre", assignee="zhang"))
        with pytest.raises(NotAllowed, match="停用"):
            LeagueTaskPolicy().check(session, "zhang", own, "complete")


def test_a_role_granted_in_the_same_transaction_counts_at_once(sessions, league):
    from workflows.organisations import by_code
    from workflows.roles import grant_role
    policy = LeagueTaskPolicy()
    with sessions() as session:
        with pytest.raises(NotAllowed):
            policy.check(session, "zhang", HumanTask(**VERIFY), "claim")  # read and kept: no inspector role
        grant_role(session, session.scalar(select(User).where(User.username == "zhang")), "inspector",
                   by_code(session, "qd-sn"))
        policy.check(session, "zhang", HumanTask(**VERIFY), "claim")
