"""The daily ranking and the bulletins as periodic jobs ("rankings.daily", "bulletins.issue").

``rankings.daily`` runs every hour and computes the ranking of the day that ended (Beijing time)
once: a day already computed after its end is skipped (one computed during the day, by hand, is
redone), so every run after the first of a day does nothing.  Both jobs are singletons (one run
at a time across every process: ``engine/job_locks.py``), and the bulletins job computes a
missing snapshot under the daily job's lock, so with several web workers each ticking the same
jobs a day is computed once and no run fails on another's unique keys; a run that still lost
such a race (a manual ``flask assessment rank`` at the same moment) rolls back.
It then prunes old snapshots (:func:`workflows.rankings.prune_rankings`).  A payload
``{"day": "2026-05-31"}`` recomputes a given day (a manual run).

``bulletins.issue`` runs every six hours and issues, once each:
- on the 1st (or later) the monthly bulletin of the month before, for every leading organ;
- from 16 June the half-year review, for every leading organ;
- from 1 January the year-end evaluation of the year before (if the ranking ran that year): every
  cadre's verdict is written to the eligibility records (``eligibility.AssessmentResult``), once
  for the whole tree.
Each issue is announced to the organisers of the organisation (in-app notification).  Issuing is
marked by a ``bulletin_issue`` row, written with the announcement in one transaction: idempotent.
"""
from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.job_locks import cluster_lock
from engine.jobs import JobContext

from .bulletins import BulletinIssue, issue_bulletin, record_year_end, year_end_evaluation
from .jobs import league_jobs
from .models import LEADING_ORGAN_KINDS, Notification, Organisation
from .rankings import (HALF_YEAR_DAY, RankingRun, compute_rankings, day_end, latest_day, local_today,
                       prune_rankings)
from .roles import holders

log = logging.getLogger(__name__)

DAILY_EVERY_SECONDS = 3600.0
ISSUE_EVERY_SECONDS = 6 * 3600.0
DAILY_JOB, ISSUE_JOB = "rankings.daily", "bulletins.issue"
SNAPSHOT_WAIT_SECONDS = 300.0  # the bulletins job waits this long for a running daily ranking (province: ~10 s)


def rank_day(ctx: JobContext, day: date, force: bool = False) -> bool:
    """Compute ``day``'s ranking and commit (unless already there and not ``force``); whether it ran."""
    now = ctx.engine.clock.now()
    with ctx.session_factory() as session:
        run = session.get(RankingRun, day)
        if not force and run is not None and run.computed_at >= day_end(day):
            return False  # computed after the day was over; a run during the day (by hand) is redone
        result = compute_rankings(session, day, now)
        pruned = prune_rankings(session, local_today(now))
        try:
            session.commit()
        except IntegrityError:  # another worker computed the same day a moment ago
            session.rollback()
            return False
    log.info("ranking of %s: %d cadres, %d organisations in %.1f s; %d old day(s) pruned", day, result.cadres,
             result.organisations, result.seconds, pruned)
    return True


@league_jobs.job(DAILY_JOB, every_seconds=DAILY_EVERY_SECONDS, singleton=True)
def daily_ranking(ctx: JobContext, payload: dict) -> None:
    """Compute yesterday's ranking once (or ``payload["day"]``'s, again)."""
    if payload.get("day"):
        rank_day(ctx, date.fromisoformat(payload["day"]), force=True)
        return
    rank_day(ctx, local_today(ctx.engine.clock.now()) - timedelta(days=1))


def _announce(session: Session, org: Organisation, subject: str, body: str, now: datetime) -> None:
    for user in holders(session, "organiser", org):
        session.add(Notification(recipient=user.username, channel="in_app", subject=subject[:255], body=body[:4000],
                                 created_at=now))


class SnapshotBusy(RuntimeError):
    """The snapshot a bulletin needs is being computed elsewhere for longer than the bulletins job waits."""


def _latest(ctx: JobContext, day: date, first: date) -> date | None:
    with ctx.session_factory() as session:
        found = latest_day(session, on_or_before=day)
    return found if found is not None and found >= first else None


def _ensure_snapshot(ctx: JobContext, day: date, first: date) -> date:
    """The latest snapshot in [first, day], computing ``day``'s when there is none.

    The computing happens under the daily job's lock, so it never runs beside ``rankings.daily``
    computing the same day in another process; whoever comes second finds the snapshot made.
    """
    found = _latest(ctx, day, first)
    if found is not None:
        return found
    with cluster_lock(ctx.session_factory, DAILY_JOB, wait_seconds=SNAPSHOT_WAIT_SECONDS) as held:
        if not held:
            raise SnapshotBusy(f"the ranking of {day} is still being computed elsewhere; bulletins wait for the next run")
        found = _latest(ctx, day, first)
        if found is None:
            rank_day(ctx, day)
            return day
    return found


def _issue_for_organs(ctx: JobContext, kind: str, period: str, snapshot: date, subject: str, body: str) -> int:
    now = ctx.engine.clock.now()
    issued = 0
    with ctx.session_factory() as session:
        organs = session.scalars(select(Organisation).where(Organisation.kind.in_(LEADING_ORGAN_KINDS))
                                 .order_by(Organisation.path)).all()
        done = set(session.scalars(select(BulletinIssue.organisation_id).where(BulletinIssue.kind == kind,
                                                                               BulletinIssue.period == period)))
        for org in organs:
            if org.id in done:
                continue
            if issue_bulletin(session, org, kind, period, snapshot, 0, now) is not None:
                _announce(session, org, f"{org.name}{subject}", body, now)
                issued += 1
        try:
            session.commit()
        except IntegrityError:  # a concurrent run issued some of them: it announced them too
            session.rollback()
            return 0
    return issued


def issue_due(ctx: JobContext, today: date) -> dict[str, int]:
    """Issue whatever is due on ``today`` and not issued yet; how many of each kind were issued."""
    result = {}
    previous = today.replace(day=1) - timedelta(days=1)
    month = f"{previous.year:04d}-{previous.month:02d}"
    snapshot = _ensure_snapshot(ctx, previous, previous.replace(day=1))
    result["monthly"] = _issue_for_organs(
        ctx, "monthly", month, snapshot, f"{previous.year}年{previous.month}月“1+100”工作月度通报已发布",
        f"{previous.year}年{previous.month}月月度通报（排名、“五个一”、集中活动、抽查与满意度）已发布，请在“考核排名”中查看。")
    half_year = date(today.year, *HALF_YEAR_DAY)
    if today > half_year:
        snapshot = _ensure_snapshot(ctx, half_year, date(today.year, 1, 1))
        result["half_year"] = _issue_for_organs(
            ctx, "half_year", str(today.year), snapshot, f"{today.year}年“1+100”工作半年考核评估已发布",
            f"{today.year}年半年考核评估（含手机端绑定率）已发布，请在“考核排名”中查看。")
    result["year_end"] = issue_year_end(ctx, today.year - 1)
    return result


def issue_year_end(ctx: JobContext, year: int) -> int:
    """Evaluate ``year`` for the whole tree and write every cadre's verdict, once; how many verdicts were written.

    Only a year the ranking ran in is evaluated: verdicts are consequential (a failed cadre cannot be
    nominated), so a fresh installation does not fail everybody for a year it never saw.
    """
    with ctx.session_factory() as session:
        seen = latest_day(session, on_or_before=date(year, 12, 31))
    if seen is None or seen.year != year:
        return 0
    snapshot = _ensure_snapshot(ctx, date(year, 12, 31), date(year, 12, 31))
    now = ctx.engine.clock.now()
    written = 0
    with ctx.session_factory() as session:
        roots = session.scalars(select(Organisation).where(Organisation.parent_id.is_(None))).all()
        for root in roots:
            if issue_bulletin(session, root, "year_end", str(year), snapshot, 0, now) is None:
                continue
            evaluation = year_end_evaluation(session, root, year)
            written += record_year_end(session, evaluation, None, now)
            _announce(session, root, f"{year}年“1+100”工作年终考核结果已生成",
                      f"{year}年年终考核：{evaluation.passed}名团干部合格，"
                      f"{len(evaluation.verdicts) - evaluation.passed}名不合格。", now)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            return 0
    return written


@league_jobs.job(ISSUE_JOB, every_seconds=ISSUE_EVERY_SECONDS, singleton=True)
def issue_bulletins(ctx: JobContext, payload: dict) -> None:
    """Issue the bulletins due today (Beijing time) that were not issued yet."""
    today = date.fromisoformat(payload["today"]) if payload.get("today") else local_today(ctx.engine.clock.now())
    issued = issue_due(ctx, today)
    if any(issued.values()):
        log.info("bulletins issued: %s", issued)
