"""Helpers of the campaign tests: more cadres for the hand-built league, a campaign in one call, counts."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, select

from engine.models import HumanTask, ProcessInstance
from workflows.campaign_launch import launch_campaign
from workflows.campaigns import Campaign, CampaignTarget, create_campaign
from workflows.models import Cadre, Organisation, User
from workflows.roles import load_actor

BPMN_DIR = Path(__file__).resolve().parents[2] / "bpmn"
DUE = "2026-11-30T00:00:00+08:00"
WINDOW_START = datetime(2026, 5, 1, tzinfo=timezone.utc)
WINDOW_END = datetime(2026, 12, 31, tzinfo=timezone.utc)
# bpmn/congress_study.report.json satisfied
REPORT = {"format": "sharing_session", "topic": "新时代青年的使命担当", "date": "2026-11-20", "place": "市南区青年之家",
          "youth_count": 35, "description": "与所联系的青年一起学习党的十九大报告，分组交流心得。",
          "evidence": ["sharing-1.jpg"]}


class RecordingQueue:
    """A queue that only remembers what was enqueued (a worker that never came)."""

    def __init__(self):
        self.jobs: list[tuple[str, dict]] = []

    def enqueue(self, name: str, payload: dict) -> None:
        self.jobs.append((name, payload))

    def enqueue_many(self, name: str, payloads: list[dict]) -> None:
        self.jobs.extend((name, p) for p in payloads)


def deploy(sessions, engine, *process_ids: str) -> None:
    """Deploy processes from bpmn/ (with their forms)."""
    with sessions() as session:
        for process_id in process_ids:
            engine.deploy_file(session, BPMN_DIR / f"{process_id}.bpmn")
        session.commit()


def add_cadres(sessions, org_code: str, count: int, prefix: str, now: datetime) -> list[str]:
    """Add ``count`` part-time cadres (with accounts) to an organisation; return their usernames."""
    with sessions() as session:
        org = session.scalar(select(Organisation).where(Organisation.code == org_code))
        names = []
        for i in range(count):
            user = User(username=f"{prefix}{i:03d}", display_name=f"干部{prefix}{i}", organisation_id=org.id,
                        password_hash=None, active=True, session_version=1, created_at=now)
            session.add(user)
            session.flush()
            session.add(Cadre(user_id=user.id, code=f"c-{prefix}{i:03d}", name=f"干部{prefix}{i}", kind="part_time",
                              organisation_id=org.id))
            names.append(user.username)
        session.commit()
        return names


def new_campaign(sessions, clock, by: str = "P_org", org: str = "prov", process_id: str = "congress_study",
                 target: str = "cadre", params: dict | None = None, start: datetime | None = None,
                 end: datetime | None = None, parent_id: int | None = None, title: str = "十九大精神宣讲") -> int:
    """Create a campaign as ``by``; return its id."""
    with sessions() as session:
        campaign = create_campaign(session, load_actor(session, by), process_id=process_id, title=title,
                                   organisation_code=org, target_kind=target,
                                   window_start=start or WINDOW_START, window_end=end or WINDOW_END,
                                   parameters={"due_at": DUE} if params is None else params, now=clock.now(),
                                   parent_id=parent_id)
        session.commit()
        return campaign.id


def launch(sessions, queue, campaign_id: int, now: datetime) -> list[int]:
    """Launch a campaign through ``queue``; return the chunk numbers enqueued."""
    with sessions() as session:
        return launch_campaign(session, queue, session.get(Campaign, campaign_id), now)


def campaign_row(sessions, campaign_id: int) -> Campaign:
    """The campaign, re-read."""
    with sessions() as session:
        return session.get(Campaign, campaign_id)


def target_instances(sessions, campaign_id: int) -> dict[str, int | None]:
    """target key → instance id of a campaign."""
    with sessions() as session:
        return dict(session.execute(select(CampaignTarget.target_key, CampaignTarget.instance_id)
                                    .where(CampaignTarget.campaign_id == campaign_id)).all())


def instances_of(sessions, process_id: str) -> list[ProcessInstance]:
    """Every instance of a process."""
    with sessions() as session:
        return list(session.scalars(select(ProcessInstance).where(ProcessInstance.process_id == process_id)
                                    .order_by(ProcessInstance.id)))


def cadre_keys(sessions, *org_codes: str) -> set[str]:
    """The target keys of the cadres working in the given organisations."""
    with sessions() as session:
        ids = session.scalars(select(Cadre.id).join(Organisation, Organisation.id == Cadre.organisation_id)
                              .where(Organisation.code.in_(org_codes)))
        return {f"cadre:{i}" for i in ids}


def open_task_count(sessions, instance_ids) -> int:
    """How many open human tasks these instances have."""
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(HumanTask).where(
            HumanTask.instance_id.in_(list(instance_ids)), HumanTask.state.in_(HumanTask.OPEN_STATES)))


def after(moment: datetime, **delta) -> datetime:
    """``moment`` plus a delta."""
    return moment + timedelta(**delta)
