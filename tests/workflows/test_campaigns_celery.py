"""Campaign launch on the Celery backend: a real worker killed with SIGKILL half-way, a second one finishes it.

PostgreSQL only (several processes on one database); Redis must be up (skipped without it, a
failure in CI).
"""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from engine.models import ProcessInstance
from tests.job_support import CeleryWorkers, wait_until
from workflows import campaign_launch
from workflows.campaigns import CampaignTarget, campaign_by_id

from .campaign_support import add_cadres, cadre_keys, campaign_row, deploy, launch, new_campaign, target_instances

CADRES = 600


@pytest.fixture
def postgres_only(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("Celery workers in several processes share one PostgreSQL database")


def launched(sessions, campaign_id) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(CampaignTarget).where(
            CampaignTarget.campaign_id == campaign_id, CampaignTarget.instance_id.is_not(None)))


def test_a_worker_killed_half_way_leaves_exactly_one_instance_per_target(postgres_only, database_url, sessions,
                                                                        clock, league, league_engine, monkeypatch):
    deploy(sessions, league_engine, "congress_study")
    add_cadres(sessions, "qd-sn-gw", CADRES, "gw", clock.now())
    monkeypatch.setattr(campaign_launch, "CHUNK_SIZE", 25)
    campaign_id = new_campaign(sessions, clock)
    with CeleryWorkers(database_url, visibility_timeout=3) as workers:
        first = workers.start()
        chunks = launch(sessions, workers.queue, campaign_id, clock.now())
        assert len(chunks) == (CADRES + 3 + 24) // 25
        wait_until(lambda: launched(sessions, campaign_id) >= 100, timeout=120, message="first chunks launched")
        first.kill9()
        at_kill = launched(sessions, campaign_id)
        assert at_kill < CADRES + 3, "the worker finished before it could be killed; raise CADRES"
        second = workers.start()
        try:
            wait_until(lambda: campaign_row(sessions, campaign_id).status == "launched", timeout=240,
                       message="the second worker finishing the launch")
        except AssertionError:
            print(first.log()[-4000:], second.log()[-4000:])
            raise
        assert "instance(s) started" in second.log()  # the second worker launched chunks itself
    targets = target_instances(sessions, campaign_id)
    assert set(targets) == cadre_keys(sessions, "qd-sn", "qd-sn-gw", "jn-lx") and None not in targets.values()
    with sessions() as session:
        instances = session.execute(select(ProcessInstance.id, ProcessInstance.business_key)
                                    .where(ProcessInstance.process_id == "congress_study")).all()
        assert sorted(i for i, _key in instances) == sorted(targets.values())  # nothing doubled, nothing orphaned
        assert len({key for _i, key in instances}) == len(instances) == CADRES + 3
        assert campaign_by_id(session, campaign_id).total_targets == CADRES + 3
