"""Fixtures for the domain tests: a small league and an engine wired with the league's rules."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine import Engine
from tests.league import build_league
from workflows.notifications import notify_from_audit
from workflows.roles import LeagueAssignmentResolver, LeagueTaskPolicy
from workflows.services import registry

WORKFLOWS_BPMN = Path(__file__).resolve().parent / "bpmn"


@pytest.fixture
def league(sessions, clock):
    """The league of tests/league.py, committed."""
    with sessions() as session:
        built = build_league(session, clock.now())
        session.commit()
        return built


@pytest.fixture
def league_engine(clock):
    """An engine with the league's assignment resolver and task policy (no workflow cache)."""
    return Engine(services=registry, resolver=LeagueAssignmentResolver(), policy=LeagueTaskPolicy(), clock=clock,
                  cache_size=0, listeners=(notify_from_audit,))
