"""Campaign launch (issue 5): a campaign to every cadre of the province, through the real launch code.

For each number of targets and each job backend, the script:

  - creates a fresh PostgreSQL schema, migrates it (``bench/start_many.py`` ``postgres_database``),
    builds a province with that many cadres in bulk (``build_cadres``) and deploys
    ``bpmn/congress_study.bpmn`` (``deploy``);
  - creates a campaign over the root with ``workflows.campaigns.create_campaign``, as its organiser;
  - launches it with ``workflows.campaign_launch.launch_campaign`` (plan every target and chunk in
    bulk, commit, enqueue one ``campaign.launch_chunk`` job per chunk of 500) — the *plan* time;
  - polls ``launch_progress`` until the campaign is launched — the *launch* time, from the end of
    the plan to the last chunk's commit as seen by the poller (every 0.1 s);
  - checks that every target has exactly one instance, and every instance one target;
  - drops the schema.

Backends: ``inprocess-1`` and ``inprocess-2`` (``engine.jobs.InProcessJobQueue`` with 1 or 2 worker
threads in this process); ``celery-2`` (two ``celery worker --pool=solo`` processes on Redis, a
unique queue, started and ready before the launch: ``tests/job_support.py`` ``CeleryWorkers``).
Each worker loads the process spec on its first chunk, inside the launch time.

Usage:
  .venv/bin/python bench/campaign_launch.py [--postgres postgresql://postgres@127.0.0.1:5432/test]
      [--targets 1000 10000 100000] [--backends inprocess-1 inprocess-2 celery-2] [--timeout 1800]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select

from bench.start_many import build_cadres, deploy, postgres_database
from engine.database import make_session_factory, make_sql_engine
from engine.models import ProcessInstance
from tests.job_support import CeleryWorkers, inprocess_queue
from workflows.campaign_launch import launch_campaign, launch_progress
from workflows.campaigns import Campaign, CampaignTarget, create_campaign
from workflows.models import Organisation
from workflows.roles import Actor

PROCESS_ID = "congress_study"
BACKENDS = ("inprocess-1", "inprocess-2", "celery-2")
POLL_SECONDS = 0.1


@contextlib.contextmanager
def job_queue(url: str, backend: str):
    """The queue of ``backend``, its workers started and ready; stopped afterwards."""
    kind, workers = backend.rsplit("-", 1)
    if kind == "inprocess":
        with inprocess_queue(url, workers=int(workers)) as queue:
            yield queue
    elif kind == "celery":
        with CeleryWorkers(url, pool="solo", visibility_timeout=600) as celery:
            for _ in range(int(workers)):
                celery.start()
            yield celery.queue
    else:
        raise ValueError(f"unknown backend {backend!r}; one of {', '.join(BACKENDS)}")


def new_campaign(sessions, now: datetime) -> int:
    """A scheduled campaign of the process to every cadre of the root, created as its organiser; its id."""
    with sessions() as session:
        root = session.scalar(select(Organisation).where(Organisation.parent_id.is_(None)))
        organiser = Actor(username="bench", display_name="基准测试", organisation_code=root.code,
                          organisation_path=root.path, grants=(("organiser", root.code, root.path),))
        due = (now + timedelta(days=300)).astimezone(timezone(timedelta(hours=8))).replace(microsecond=0)
        campaign = create_campaign(session, organiser, process_id=PROCESS_ID, title="十九大精神宣讲（基准）",
                                   organisation_code=root.code, target_kind="cadre",
                                   window_start=now - timedelta(minutes=1), window_end=now + timedelta(days=365),
                                   parameters={"due_at": due.isoformat()}, now=now)
        session.commit()
        return campaign.id


def wait_launched(sessions, campaign_id: int, timeout: float) -> tuple[int, int]:
    """Poll ``launch_progress`` until the campaign is launched; (launched, failed)."""
    deadline = time.monotonic() + timeout
    with sessions() as session:
        campaign = session.get(Campaign, campaign_id)
        while True:
            progress = launch_progress(session, campaign)
            session.rollback()  # a fresh snapshot for the next poll
            if progress.done and progress.launched + progress.failed >= progress.total:
                return progress.launched, progress.failed
            if time.monotonic() > deadline:
                raise TimeoutError(f"campaign {campaign_id}: {progress.launched}/{progress.total} launched after "
                                   f"{timeout}s")
            time.sleep(POLL_SECONDS)


def check_one_each(sessions, campaign_id: int, targets: int) -> str:
    """'ok' if every target has exactly one instance and each instance belongs to one target, else why not."""
    with sessions() as session:
        rows = session.execute(select(func.count(), func.count(CampaignTarget.instance_id),
                                      func.count(func.distinct(CampaignTarget.instance_id)))
                               .where(CampaignTarget.campaign_id == campaign_id)).one()
        instances = session.scalar(select(func.count()).select_from(ProcessInstance).where(
            ProcessInstance.business_key.like(f"campaign-{campaign_id}-%")))
    total, with_instance, distinct = rows
    if total == with_instance == distinct == instances == targets:
        return "ok"
    return f"FAIL targets {total}, with instance {with_instance}, distinct {distinct}, instances {instances}"


def run_one(base: str, targets: int, backend: str, timeout: float) -> tuple:
    """One measurement in its own schema; (targets, backend, plan s, launch s, instances/s, check)."""
    now = datetime.now(UTC)
    with postgres_database(base) as url:
        build_cadres(url, targets, now)
        deploy(url, PROCESS_ID)
        sql = make_sql_engine(url)
        sessions = make_session_factory(sql)
        try:
            campaign_id = new_campaign(sessions, now)
            with job_queue(url, backend) as queue:
                began = time.perf_counter()
                with sessions() as session:
                    launch_campaign(session, queue, session.get(Campaign, campaign_id), datetime.now(UTC))
                planned = time.perf_counter()
                launched, failed = wait_launched(sessions, campaign_id, timeout)
                finished = time.perf_counter()
            check = check_one_each(sessions, campaign_id, targets)
            if failed:
                check += f" ({failed} failed)"
        finally:
            sql.dispose()
    plan, launch = planned - began, finished - planned
    return targets, backend, plan, launch, launched / launch, check


def main() -> None:
    """Run every (targets, backend) pair and print one row each."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="PostgreSQL URL (a fresh schema is made and dropped per run)")
    parser.add_argument("--targets", type=int, nargs="+", default=[1000, 10000], help="cadres (one instance each)")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for one launch")
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, python "
          f"{platform.python_version()}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    print(f"{'targets':>8} {'backend':12} {'plan s':>8} {'launch s':>9} {'inst/s':>8}  check  load", flush=True)
    for targets in args.targets:
        for backend in args.backends:
            row = run_one(args.postgres, targets, backend, args.timeout)
            print(f"{row[0]:>8,} {row[1]:12} {row[2]:>8.2f} {row[3]:>9.2f} {row[4]:>8,.0f}  {row[5]}  "
                  f"{os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
