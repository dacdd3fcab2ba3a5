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
Each worker loads the process spec on its first chunk, inside the launch time.  For the in-process
backends, *cpu ms/i* is the CPU time of this process (workers, poller) per instance over the launch.

``--profile-chunks N`` measures where the time of one chunk goes instead: N chunks of 500 cadres,
each run in this process by the ``campaign.launch_chunk`` job handler (``campaign_jobs`` →
``run_launch_chunk`` → ``Engine.start_many`` → listeners → assignment), with the CPU time of this
process and of its own PostgreSQL backends (``/proc/<pid>/stat``, so other load on the database
server is not counted) per instance and chunk.  The first chunk loads the spec; the median is
of the others.  ``--profile-out FILE`` runs the last chunk under cProfile (CPU clock), writes
the stats to FILE and prints the top functions.

Usage:
  .venv/bin/python bench/campaign_launch.py [--postgres postgresql://postgres@127.0.0.1:5432/test]
      [--targets 1000 10000 100000] [--backends inprocess-1 inprocess-2 celery-2] [--timeout 1800]
  .venv/bin/python bench/campaign_launch.py --profile-chunks 8 [--profile-out /tmp/chunk.prof]
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import os
import platform
import pstats
import sys
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event, func, select

from bench.start_many import build_cadres, deploy, postgres_database
from engine.database import make_session_factory, make_sql_engine
from engine.models import ProcessInstance
from tests.job_support import CeleryWorkers, inprocess_queue
from workflows.campaign_launch import LAUNCH_CHUNK_JOB, launch_campaign, launch_progress
from workflows.campaigns import Campaign, CampaignTarget, create_campaign
from workflows.jobs import build_job_context, league_jobs
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
    """One measurement in its own schema; (targets, backend, plan s, launch s, instances/s, check, cpu ms/i)."""
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
                planned, cpu = time.perf_counter(), time.process_time()
                launched, failed = wait_launched(sessions, campaign_id, timeout)
                finished, cpu = time.perf_counter(), time.process_time() - cpu
            check = check_one_each(sessions, campaign_id, targets)
            if failed:
                check += f" ({failed} failed)"
        finally:
            sql.dispose()
    plan, launch = planned - began, finished - planned
    cpu_ms = cpu / targets * 1000 if backend.startswith("inprocess") else None
    return targets, backend, plan, launch, launched / launch, check, cpu_ms


class BackendCpu:
    """CPU seconds of the PostgreSQL backends serving one SQLAlchemy engine (the server must be local)."""

    def __init__(self, sql) -> None:
        self.pids: set[int] = set()
        event.listen(sql, "connect", self._remember)

    def _remember(self, dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT pg_backend_pid()")
        self.pids.add(cursor.fetchone()[0])
        cursor.close()

    def seconds(self) -> float:
        """utime + stime of those backends so far."""
        ticks = 0
        for pid in self.pids:
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])
            except OSError:
                pass  # not local, or gone
        return ticks / os.sysconf("SC_CLK_TCK")


def profile_chunks(base: str, chunks: int, out: str | None) -> None:
    """Run ``chunks`` launch chunks through the job handler in this process; print CPU per instance."""
    now = datetime.now(UTC)
    with postgres_database(base) as url:
        build_cadres(url, 500 * chunks, now)
        deploy(url, PROCESS_ID)
        sql = make_sql_engine(url)
        backends = BackendCpu(sql)
        try:
            sessions = make_session_factory(sql)
            campaign_id = new_campaign(sessions, now)
            with sessions() as session:
                numbers = launch_campaign(session, None, session.get(Campaign, campaign_id), datetime.now(UTC))
            context, handler = build_job_context(sql_engine=sql), league_jobs.get(LAUNCH_CHUNK_JOB).handler
            rows = []
            for number in numbers:
                profiler = cProfile.Profile(time.process_time) if out and number == numbers[-1] else None
                gc.collect()
                wall, cpu, pg = time.perf_counter(), time.process_time(), backends.seconds()
                if profiler:
                    profiler.enable()
                handler(context, {"campaign_id": campaign_id, "chunk": number})
                if profiler:
                    profiler.disable()
                rows.append((time.perf_counter() - wall, time.process_time() - cpu, backends.seconds() - pg))
                wall_s, cpu_s, pg_s = rows[-1]  # seconds per chunk of 500: x2 is ms per instance
                print(f"chunk {number:>3}: cpu {cpu_s * 2:.3f} ms/i  postgres {pg_s * 2:.3f} ms/i  "
                      f"wall {wall_s * 2:.3f} ms/i{'  (profiled)' if profiler else ''}", flush=True)
            check = check_one_each(sessions, campaign_id, 500 * chunks)
        finally:
            sql.dispose()
    steady = rows[1:-1] if out else rows[1:]
    if steady:
        def median(values):
            return sorted(values)[len(values) // 2] * 2
        print(f"median of chunks 2..{len(steady) + 1}: cpu {median([r[1] for r in steady]):.3f} ms/i, postgres "
              f"{median([r[2] for r in steady]):.3f} ms/i (clock ticks of 10 ms: ±0.02), wall "
              f"{median([r[0] for r in steady]):.3f} ms/i; check {check}; load {os.getloadavg()[0]:.2f}")
    if out:
        profiler.dump_stats(out)
        stats = pstats.Stats(out)
        stats.sort_stats("cumulative").print_stats(25)
        stats.sort_stats("tottime").print_stats(15)


def main() -> None:
    """Run every (targets, backend) pair and print one row each."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="PostgreSQL URL (a fresh schema is made and dropped per run)")
    parser.add_argument("--targets", type=int, nargs="+", default=[1000, 10000], help="cadres (one instance each)")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for one launch")
    parser.add_argument("--profile-chunks", type=int, default=0, metavar="N",
                        help="instead: run N chunks of 500 through the job handler here and print CPU per instance")
    parser.add_argument("--profile-out", default=None, metavar="FILE",
                        help="with --profile-chunks: cProfile the last chunk into FILE and print the top functions")
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, python "
          f"{platform.python_version()}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    if args.profile_chunks:
        profile_chunks(args.postgres, args.profile_chunks, args.profile_out)
        return
    print(f"{'targets':>8} {'backend':12} {'plan s':>8} {'launch s':>9} {'inst/s':>8} {'cpu ms/i':>8}  check  load",
          flush=True)
    for targets in args.targets:
        for backend in args.backends:
            row = run_one(args.postgres, targets, backend, args.timeout)
            cpu = f"{row[6]:.3f}" if row[6] is not None else "-"
            print(f"{row[0]:>8,} {row[1]:12} {row[2]:>8.2f} {row[3]:>9.2f} {row[4]:>8,.0f} {cpu:>8}  {row[5]}  "
                  f"{os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
