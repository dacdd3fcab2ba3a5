"""The engine as the "1+100" programme configures it: league services, assignment, policy, notifications.

One place composes it, so the web app, the CLI, a Celery worker and a benchmark all drive the same
engine.  No Flask here.
"""
from __future__ import annotations

import os

from engine import Clock, Engine, SystemClock
from engine.metrics import count_from_audit
from engine.multi_instance import DEFAULT_MAX_MULTI_INSTANCE


def build_league_engine(clock: Clock | None = None, cache_size: int = 2000) -> Engine:
    """An :class:`Engine` with the league's service operators, resolver, task policy, and the notice, points and
    evidence listeners.

    ``LIANQING_MAX_MULTI_INSTANCE`` (default 1,000) caps the instances one multi-instance activity creates.
    """
    from . import services as domain_services
    from .evidence import keep_evidence_from_audit
    from .notifications import notify_from_audit
    from .roles import LeagueAssignmentResolver, LeagueTaskPolicy
    from .task_points import award_from_audit
    return Engine(services=domain_services.registry, resolver=LeagueAssignmentResolver(),
                  policy=LeagueTaskPolicy(), clock=clock or SystemClock(), cache_size=cache_size,
                  listeners=(notify_from_audit, award_from_audit, count_from_audit, keep_evidence_from_audit),
                  max_multi_instance=int(os.environ.get("LIANQING_MAX_MULTI_INSTANCE") or DEFAULT_MAX_MULTI_INSTANCE))
