"""Fifty clients racing on one task, one pooled wish, and several sweepers on many timers: one winner each.

PostgreSQL only: SQLite serialises every writer, so nothing races there (its half is skipped with
the reason).  Each racer has its own engine and its own database connection, opened before a
barrier so that all of them really start together.  tests/engine/test_concurrency.py and
tests/engine/test_timers.py cover two or three racers on the engine; here it is fifty, through the
HTTP API too, on claims and pooled wishes as well as completions, and with the job queue's sweep.
"""
from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select, text

from engine import Engine
from engine.database import make_session_factory, make_sql_engine
from engine.errors import ConcurrentUpdate, NotAllowed, TaskAlreadyCompleted
from engine.models import AuditEvent, HumanTask, ProcessInstance
from tests.browser.conftest import live_server  # noqa: F401 - the live-server fixture, reused
from tests.conftest import ENGINE_BPMN
from tests.engine.test_lifecycle import GOOD_RECORD, open_tasks
from tests.job_support import inprocess_queue
from tests.league import build_league
from tests.web.conftest import GOOD_RECORD as ACTIVITY_RECORD
from workflows import wish_pool
from workflows.api_tokens import SCOPES, create_token
from workflows.models import User
from workflows.notifications import notify_from_audit
from workflows.organisations import by_code
from workflows.people import new_user
from workflows.roles import (
    LeagueAssignmentResolver,
    LeagueTaskPolicy,
    grant_role,
    load_actor,
)
from workflows.services import registry

RACERS = 50
BPMN_DIR = Path(__file__).resolve().parents[2] / "bpmn"
REPLY_BEYOND = {"reply_decision": "beyond_means", "reply_text": "这套资料我一时找不到，我把心愿放进心愿池，请团委帮忙。"}


@pytest.fixture
def database_url(database_url):
    """The test database, PostgreSQL only: SQLite takes one writer at a time, so there is no race to test."""
    if database_url.startswith("sqlite"):
        pytest.skip("races need concurrent writers: PostgreSQL only (SQLite serialises every write)")
    return database_url


@pytest.fixture
def racing_sessions(database_url):
    """A session factory with a connection for every racer (the default pool would queue them)."""
    sql_engine = make_sql_engine(database_url, pool_size=RACERS + 5, max_overflow=0)
    yield make_session_factory(sql_engine)
    sql_engine.dispose()


def race(count: int, act: Callable[[int, object], object], sessions) -> list[object]:
    """Run ``act(i, session)`` in ``count`` threads released together; each outcome or the exception raised."""
    barrier = threading.Barrier(count, timeout=60)
    outcomes: list[object] = [None] * count

    def run(i: int) -> None:
        with sessions() as session:
            session.execute(text("SELECT 1"))  # connect before the barrier, so the start is truly together
            barrier.wait()
            try:
                outcomes[i] = act(i, session)
                session.commit()
            except Exception as exc:  # noqa: BLE001 - the outcome is judged by the test
                session.rollback()
                outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return outcomes


def split(outcomes: list[object]) -> tuple[list[object], list[Exception], list[Exception]]:
    """(successes, conflicts, anything else) of a race."""
    wins = [o for o in outcomes if not isinstance(o, Exception)]
    conflicts = [o for o in outcomes if isinstance(o, (TaskAlreadyCompleted, ConcurrentUpdate))]
    others = [o for o in outcomes if isinstance(o, Exception) and o not in conflicts]
    return wins, conflicts, others


def count_events(session, instance_id: int, kind: str) -> int:
    return session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.instance_id == instance_id, AuditEvent.kind == kind))


# ------------------------------------------------------------------------- the engine, fifty racers

@pytest.fixture
def review_task(engine, racing_sessions, clock):
    """A started two_lane_review instance and its one open task, offered to the cadre role."""
    with racing_sessions() as session:
        engine.deploy_file(session, ENGINE_BPMN / "two_lane_review.bpmn")
        instance = engine.start(session, "two_lane_review",
                                {"deadline": (clock.now() + timedelta(days=5)).isoformat()}, organisation_id="qd")
        session.commit()
        [task] = open_tasks(session, instance.id)
        return task


def test_fifty_engines_completing_one_task_give_one_completion(engine, racing_sessions, clock, review_task):
    def complete(i, session):
        worker = Engine(services=engine.services, clock=clock, cache_size=0)
        return worker.complete_task(session, review_task.id, GOOD_RECORD, f"cadre-{i}")

    wins, conflicts, others = split(race(RACERS, complete, racing_sessions))
    assert others == []
    assert (len(wins), len(conflicts)) == (1, RACERS - 1)
    assert all("already" in str(c) and "已完成" in str(c) for c in conflicts)
    with racing_sessions() as session:
        instance = session.get(ProcessInstance, review_task.instance_id)
        assert instance.version == 3  # started, then exactly one completion
        assert count_events(session, instance.id, "task_completed") == 1
        assert session.get(HumanTask, review_task.id).completed_by == wins[0].completed_by
        reviews = session.scalar(select(func.count()).select_from(HumanTask).where(
            HumanTask.instance_id == instance.id, HumanTask.bpmn_id == "Task_review"))
        assert reviews == 1


def test_fifty_engines_claiming_one_task_give_one_holder(engine, racing_sessions, clock, review_task):
    def claim(i, session):
        worker = Engine(services=engine.services, clock=clock, cache_size=0)
        return worker.claim(session, review_task.id, f"cadre-{i}").assignee

    wins, conflicts, others = split(race(RACERS, claim, racing_sessions))
    # A loser who read the task before the winner wrote is refused by the guard (just taken); one
    # who read it after is refused by the policy (it belongs to the winner now).  Both say who has it.
    assert len(wins) == 1, f"{len(wins)} claimers were told they hold the task: {sorted(wins)}"
    assert all(isinstance(o, ConcurrentUpdate) and "just taken" in str(o) for o in conflicts)
    assert all(isinstance(o, NotAllowed) and wins[0] in str(o) for o in others)
    with racing_sessions() as session:
        assert session.get(HumanTask, review_task.id).assignee == wins[0]
        assert count_events(session, review_task.instance_id, "claimed") == 1


# ------------------------------------------------------------------------------ the wish pool board

@pytest.fixture
def pooled_wish(racing_sessions, clock):
    """A wish the cadre could not fulfil, pooled at 市南区团委 with fifty coordinators there; its pool task id."""
    league_engine = Engine(services=registry, resolver=LeagueAssignmentResolver(), policy=LeagueTaskPolicy(),
                           clock=clock, cache_size=0, listeners=(notify_from_audit,))
    with racing_sessions() as session:
        league = build_league(session, clock.now())
        league_engine.deploy_file(session, BPMN_DIR / "micro_wish.bpmn")
        org = by_code(session, "qd-sn")
        for i in range(RACERS):
            user = new_user(f"coord{i:02d}", f"协调员{i}", clock.now(), organisation=org)
            session.add(user)
            session.flush()
            grant_role(session, user, "coordinator", org)
        youth = f"youth-{league.youth['xiaoming'].id}"
        instance = league_engine.start(session, "micro_wish", {
            "youth_assignee": youth, "cadre_assignee": "zhang", "wish_title": "想要一套考研复习资料",
            "wish_description": "明年考研，家里买不起全套资料，想借或要一套。"},
            organisation_id="qd-sn", business_key="wish-race", actor=youth)
        session.commit()
        [reply] = open_tasks(session, instance.id)
        league_engine.complete_task(session, reply.id, REPLY_BEYOND, "zhang")
        session.commit()
        pool = wish_pool.current_pool_task(session, instance.id)
        assert pool is not None and pool.organisation_id == "qd-sn" and pool.assignee is None
        return pool.id, league_engine


def test_fifty_coordinators_claiming_one_pooled_wish_give_one_holder(racing_sessions, clock, pooled_wish):
    task_id, _league_engine = pooled_wish

    def claim(i, session):
        worker = Engine(services=registry, resolver=LeagueAssignmentResolver(), policy=LeagueTaskPolicy(),
                        clock=clock, cache_size=0, listeners=(notify_from_audit,))
        return wish_pool.claim(session, worker, load_actor(session, f"coord{i:02d}"), task_id).assignee

    wins, conflicts, others = split(race(RACERS, claim, racing_sessions))
    assert len(wins) == 1, f"{len(wins)} coordinators were told they hold the wish: {sorted(wins)}"
    assert all(isinstance(o, ConcurrentUpdate) for o in conflicts)
    assert all(isinstance(o, NotAllowed) for o in others), others
    with racing_sessions() as session:
        task = session.get(HumanTask, task_id)
        assert task.assignee == wins[0]
        assert count_events(session, task.instance_id, "claimed") == 1


# --------------------------------------------------------------------------------------- HTTP API

def test_fifty_http_clients_completing_one_task_one_200_the_rest_a_clear_conflict(live_server):  # noqa: F811
    clock = live_server.clock

    def setup(session, engine):
        instance = engine.start(session, "activity_record",
                                {"deadline": (clock.now() + timedelta(days=5)).isoformat(), "cadre_assignee": "zhang"},
                                organisation_id="qd-sn", actor="test")
        session.flush()
        [task] = open_tasks(session, instance.id)
        user = session.scalar(select(User).where(User.username == "zhang"))
        secret = create_token(session, user, "race", list(SCOPES), clock.now(), 30).secret
        return task.id, instance.id, secret

    task_id, instance_id, secret = live_server.run(setup)
    url = f"{live_server.url}/api/v1/tasks/{task_id}"
    headers = {"Authorization": f"Bearer {secret}"}
    etag = requests.get(url, headers=headers, timeout=30).headers["ETag"]
    barrier = threading.Barrier(RACERS, timeout=60)
    answers: list[tuple[int, str]] = [(0, "")] * RACERS

    def post(i: int) -> None:
        with requests.Session() as http:
            http.get(f"{live_server.url}/health", timeout=30)  # open the connection before the barrier
            barrier.wait()
            response = http.post(f"{url}/complete", json={"data": ACTIVITY_RECORD},
                                 headers={**headers, "If-Match": etag}, timeout=60)
            answers[i] = (response.status_code, response.text)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    statuses = Counter(status for status, _ in answers)
    assert statuses[200] == 1, statuses
    # The losers read the task before the winner wrote: the engine's guard tells them 409, a late
    # reader's If-Match 412; each says what happened in words.
    assert statuses[409] + statuses[412] == RACERS - 1, statuses
    assert all(("already" in body or "changed" in body) for status, body in answers if status != 200)

    def check(session, _engine):
        assert count_events(session, instance_id, "task_completed") == 1
        assert session.get(HumanTask, task_id).completed_by == "zhang"
        return session.get(ProcessInstance, instance_id).version
    assert live_server.run(check) == 3


# ------------------------------------------------------------------------------------- the sweepers

def test_engine_sweepers_and_job_queues_fire_every_timer_once(engine, racing_sessions, database_url, clock):
    count, engines, queues = 60, 3, 2
    with racing_sessions() as session:
        engine.deploy_file(session, ENGINE_BPMN / "two_lane_review.bpmn")
        for _ in range(count):
            engine.start(session, "two_lane_review", {"deadline": (clock.now() + timedelta(days=5)).isoformat()})
        session.commit()
    clock.advance(timedelta(days=6))  # both timers of every instance are due
    with inprocess_queue(database_url, clock, periodic_jobs=("engine.run_due_timers",)) as first, \
            inprocess_queue(database_url, clock, periodic_jobs=("engine.run_due_timers",)) as second:
        barrier = threading.Barrier(engines + queues, timeout=60)

        def sweep_by_queue(queue):
            barrier.wait()
            queue.tick()
            queue.drain(120)
            return 0

        def sweep(i, session):
            if i >= engines:
                return sweep_by_queue((first, second)[i - engines])
            sweeper = Engine(services=engine.services, clock=clock, cache_size=0)
            barrier.wait()
            return sweeper.run_due_timers(session, batch_size=5)

        outcomes = race(engines + queues, sweep, racing_sessions)
        assert not first.failed and not second.failed
    assert [o for o in outcomes if isinstance(o, Exception)] == []
    with racing_sessions() as session:
        fired = session.execute(select(AuditEvent.instance_id, AuditEvent.element_id, func.count())
                                .where(AuditEvent.kind == "timer_fired")
                                .group_by(AuditEvent.instance_id, AuditEvent.element_id)).all()
        assert len(fired) == 2 * count and all(n == 1 for _, _, n in fired)
        followups = session.execute(select(HumanTask.instance_id, func.count()).where(
            HumanTask.bpmn_id == "Task_followup").group_by(HumanTask.instance_id)).all()
        assert len(followups) == count and all(n == 1 for _, n in followups)
        assert session.scalar(select(func.count()).select_from(ProcessInstance).where(
            ProcessInstance.next_timer_at < clock.now(), ProcessInstance.status == "running")) == 0
