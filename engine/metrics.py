"""Prometheus counters of what the engine does: tasks opened and completed, timers fired and how late.

The engine tells its audit listeners about every change, in the transaction that makes it;
:func:`count_from_audit` is such a listener.  It keeps the counts in the session until that
transaction commits, so a step that is rolled back (a lost race, a refused form) is never counted.
Only ``prometheus_client`` here, no Flask: the web layer exposes the registry at ``/metrics``.

The counters live in the process that does the work.  Under gunicorn with several workers, set
``PROMETHEUS_MULTIPROC_DIR`` (see ``web/observability.py``) so a scrape adds up every worker.
"""
from __future__ import annotations

from collections import Counter as Tally
from datetime import datetime
from typing import Any

from prometheus_client import Counter, Histogram
from sqlalchemy import event
from sqlalchemy.orm import Session

from .clock import utc

TASKS_OPENED = Counter("lianqing_tasks_opened", "Human tasks opened (offered to a person or a role).")
TASKS_COMPLETED = Counter("lianqing_tasks_completed", "Human tasks completed.")
TIMERS_FIRED = Counter("lianqing_timers_fired", "Timers fired by the timer sweep.")
TIMER_LATENESS = Histogram("lianqing_timer_lateness_seconds", "How long after its due time each timer fired.",
                           buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 86400))
ENGINE_EVENTS = Counter("lianqing_engine_events", "Audit events written by the engine, by kind.", ["kind"])

_PENDING_KEY = "lianqing_pending_metrics"


def timer_lateness(event: dict[str, Any]) -> float | None:
    """Seconds between a ``timer_fired`` event's due time (its detail) and the moment it fired."""
    try:
        due = utc(datetime.fromisoformat(event.get("detail") or ""))
    except (TypeError, ValueError):  # a cycle timer's detail is not one moment
        return None
    return max((event["at"] - due).total_seconds(), 0.0)


def count_from_audit(session: Session, events: list[dict[str, Any]]) -> None:
    """Audit listener: remember what these events count, to be published when the transaction commits."""
    pending = session.info.setdefault(_PENDING_KEY, {"kinds": Tally(), "lateness": []})
    for item in events:
        pending["kinds"][item["kind"]] += 1
        if item["kind"] == "timer_fired" and (lateness := timer_lateness(item)) is not None:
            pending["lateness"].append(lateness)


@event.listens_for(Session, "after_commit")
def _publish(session: Session) -> None:
    pending = session.info.pop(_PENDING_KEY, None)
    if not pending:
        return
    kinds: Tally = pending["kinds"]
    TASKS_OPENED.inc(kinds["task_created"])
    TASKS_COMPLETED.inc(kinds["task_completed"])
    TIMERS_FIRED.inc(kinds["timer_fired"])
    for kind, count in kinds.items():
        ENGINE_EVENTS.labels(kind).inc(count)
    for seconds in pending["lateness"]:
        TIMER_LATENESS.observe(seconds)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)
