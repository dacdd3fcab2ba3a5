"""Large campaign workbooks (XLSX) built in the background, stored outside the web root, fetched when ready.

A province's people sheet has 100,000 rows: too much to build inside a web request.  Above
:attr:`ExportSettings.sync_rows` rows the web layer records a :class:`CampaignExport` and enqueues
the ``campaign.export`` job (``workflows/campaign_export_jobs.py``), which writes the workbook to
``<directory>/<token>.xlsx`` (a random name; the directory lies outside the web root) and marks
the row ready; the person's page polls until then.  Smaller exports are built in the request.

Only the person who asked, or an organiser (or admin) over the organisation exported, may fetch
the file (:func:`may_download`).  Exports older than :attr:`ExportSettings.retention` are deleted
with their files by the periodic ``campaign.exports_cleanup`` job (:func:`remove_expired`).

Settings come from the environment, read by :func:`export_settings` for the web app and the
workers alike: ``LIANQING_EXPORT_DIR`` (default ``<LIANQING_INSTANCE_DIR>/exports``),
``LIANQING_EXPORT_SYNC_ROWS`` (5000), ``LIANQING_EXPORT_RETENTION_HOURS`` (24).
"""
from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import ForeignKey, Index, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from engine.errors import EngineError, NotAllowed, NotFound
from engine.models import Base

from .campaign_dashboard import all_people, organisation_breakdown, write_campaign_xlsx
from .campaigns import Campaign, campaign_by_id, require_view
from .models import Organisation
from .roles import Actor

PENDING, RUNNING, READY, FAILED = "pending", "running", "ready", "failed"
UNFINISHED = (PENDING, RUNNING)
EXPORT_JOB = "campaign.export"
CLEANUP_JOB = "campaign.exports_cleanup"
DOWNLOAD_ROLE = "organiser"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TOKEN = re.compile(r"^[0-9a-f]{32}$")
REPO_ROOT = Path(__file__).resolve().parent.parent


class ExportNotReady(EngineError):
    """The workbook is not there (yet, or any more); the message says which."""

    http_status = 409


@dataclass(frozen=True)
class ExportSettings:
    """Where workbooks are stored, above how many rows they are built in the background, how long they are kept.

    ``directory`` must lie outside ``web_root`` (the web layer passes its static folder), so a
    file is only ever handed out after the check of :func:`may_download`.
    """

    directory: Path = REPO_ROOT / "instance" / "exports"
    sync_rows: int = 5000
    retention: timedelta = timedelta(hours=24)
    web_root: Path | None = None

    def storage_directory(self) -> Path:
        """The resolved directory (created); refuses one inside the web root."""
        directory = Path(self.directory).resolve()
        if self.web_root is not None:
            root = Path(self.web_root).resolve()
            if directory == root or root in directory.parents:
                raise ValueError(f"导出目录 {directory} 位于网站根目录内，文件会被直接访问 / the export directory must "
                                 f"lie outside the web root {root}")
        directory.mkdir(parents=True, exist_ok=True)
        return directory


def export_settings(environ: dict | None = None, web_root: Path | str | None = None) -> ExportSettings:
    """The export settings from the environment (defaults when unset); see the module's docstring."""
    environ = os.environ if environ is None else environ
    instance = Path(environ.get("LIANQING_INSTANCE_DIR") or REPO_ROOT / "instance")
    settings = ExportSettings(directory=Path(environ.get("LIANQING_EXPORT_DIR") or instance / "exports"),
                              sync_rows=int(environ.get("LIANQING_EXPORT_SYNC_ROWS") or 5000),
                              retention=timedelta(hours=float(environ.get("LIANQING_EXPORT_RETENTION_HOURS") or 24)))
    return replace(settings, web_root=Path(web_root)) if web_root is not None else settings


class CampaignExport(Base):
    """One requested workbook of a campaign at an organisation: who asked, where it stands, its file."""

    __tablename__ = "campaign_export"
    __table_args__ = (Index("ix_campaign_export_requested_by", "requested_by", "campaign_id", "organisation_id"),
                      Index("ix_campaign_export_requested_at", "requested_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(32), unique=True)  # the file's name in the export directory
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    requested_by: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    expected_rows: Mapped[int] = mapped_column(Integer)  # the targets in view when asked (for the progress text)
    rows: Mapped[int | None] = mapped_column(Integer)    # people written
    size: Mapped[int | None] = mapped_column(Integer)    # bytes of the file
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(500))
    requested_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    campaign: Mapped[Campaign] = relationship(lazy="joined")
    organisation: Mapped[Organisation] = relationship(lazy="joined")

    @property
    def filename(self) -> str:
        """The name the download is saved under."""
        return f"campaign-{self.campaign_id}-{self.organisation.code}.xlsx"

    @property
    def finished(self) -> bool:
        """Whether the job is over (the file is ready, or the export failed)."""
        return self.status not in UNFINISHED


def file_path(settings: ExportSettings, token: str) -> Path:
    """Where the workbook of ``token`` lives (the token is checked: never a path from outside)."""
    if not TOKEN.match(token or ""):
        raise NotFound(f"导出文件 {token!r} 不存在 / no export file {token!r}")
    return settings.storage_directory() / f"{token}.xlsx"


def request_export(session: Session, actor: Actor, campaign: Campaign, organisation: Organisation, expected_rows: int,
                   now: datetime) -> tuple[CampaignExport, bool]:
    """The export ``actor`` asks for (flushed), and whether it is new (then the caller commits and enqueues the job).

    Asking again while one's own export of the same campaign and organisation is still being built
    returns that one instead of building it twice.
    """
    require_view(actor, campaign, organisation)
    unfinished = session.scalar(select(CampaignExport).where(
        CampaignExport.requested_by == actor.username, CampaignExport.campaign_id == campaign.id,
        CampaignExport.organisation_id == organisation.id, CampaignExport.status.in_(UNFINISHED))
        .order_by(CampaignExport.id.desc()).limit(1))
    if unfinished is not None:
        return unfinished, False
    export = CampaignExport(token=secrets.token_hex(16), campaign_id=campaign.id, organisation_id=organisation.id,
                            requested_by=actor.username, status=PENDING, expected_rows=expected_rows, attempts=0,
                            requested_at=now)
    session.add(export)
    session.flush()
    return export, True


def may_download(actor: Actor, export: CampaignExport) -> bool:
    """The person who asked (while they may still read the campaign there), or an organiser over the organisation."""
    if actor.holds(DOWNLOAD_ROLE, export.organisation.path):
        return True
    if actor.username != export.requested_by:
        return False
    try:
        require_view(actor, export.campaign, export.organisation)
    except NotAllowed:
        return False
    return True


def export_for(session: Session, actor: Actor, export_id: int) -> CampaignExport:
    """The export, if ``actor`` may see it; :class:`NotFound` or :class:`NotAllowed` otherwise."""
    export = session.get(CampaignExport, export_id)
    if export is None:
        raise NotFound(f"导出 {export_id} 不存在或已过期删除 / export {export_id} does not exist or has expired")
    if not may_download(actor, export):
        raise NotAllowed(f"只有发起导出的人或该组织的组织者可以下载导出 {export_id} / only who asked for it, or an "
                         f"organiser over {export.organisation.code}, may download export {export_id}")
    return export


def open_export(session: Session, actor: Actor, export_id: int, settings: ExportSettings) -> tuple[CampaignExport, Path]:
    """The ready export and its file, for ``actor``; :class:`ExportNotReady` while it is being built or if it failed."""
    export = export_for(session, actor, export_id)
    if export.status != READY:
        raise ExportNotReady("导出文件尚未生成完毕，请稍候 / the workbook is not ready yet" if not export.finished else
                             "导出失败，请重新导出 / the export failed; please export again")
    path = file_path(settings, export.token)
    if not path.is_file():
        raise ExportNotReady("导出文件已被删除，请重新导出 / the file has been removed; please export again")
    return export, path


def build_export(session: Session, export_id: int, settings: ExportSettings, now: datetime) -> CampaignExport | None:
    """The ``campaign.export`` job: write the workbook, then mark the export ready (commits); idempotent.

    An export already ready (with its file) or removed is left alone.  The file is written under a
    temporary name and renamed, so a reader never sees half a workbook, and two runs of the same
    job (delivery is at least once) both end with one whole file.  A failure marks the export failed
    with the reason and is raised again, so the queue retries it.
    """
    export = session.get(CampaignExport, export_id)
    if export is None:
        return None
    path = file_path(settings, export.token)
    if export.status == READY and path.is_file():
        return export
    export.status, export.started_at, export.attempts, export.error = RUNNING, now, export.attempts + 1, None
    session.commit()
    partial = path.with_name(f"{export.token}.{secrets.token_hex(4)}.part")
    try:
        campaign, organisation = campaign_by_id(session, export.campaign_id), export.organisation
        breakdown = organisation_breakdown(session, campaign, organisation, now)
        with open(partial, "wb") as out:
            rows = write_campaign_xlsx(out, campaign, breakdown, all_people(session, campaign, organisation, now))
        os.replace(partial, path)
    except Exception as exc:
        session.rollback()
        partial.unlink(missing_ok=True)
        export = session.get(CampaignExport, export_id)
        if export is not None:
            export.status, export.finished_at = FAILED, now
            export.error = f"{type(exc).__name__}: {exc}"[:500]
            session.commit()
        raise
    export.status, export.rows, export.size, export.finished_at = READY, rows, path.stat().st_size, now
    session.commit()
    return export


def remove_expired(session: Session, settings: ExportSettings, now: datetime) -> int:
    """Delete the exports asked for longer than the retention ago, and their files (commits); how many.

    Files in the directory that no export names (a run killed mid-way) go too once as old.
    """
    cutoff = now - settings.retention
    expired = list(session.scalars(select(CampaignExport).where(CampaignExport.requested_at < cutoff)))
    directory = settings.storage_directory()
    for export in expired:
        file_path(settings, export.token).unlink(missing_ok=True)
        session.delete(export)
    session.commit()
    known = set(session.scalars(select(CampaignExport.token)))
    for leftover in directory.iterdir():
        token = leftover.name.split(".", 1)[0]
        if leftover.is_file() and TOKEN.match(token) and token not in known \
                and datetime.fromtimestamp(leftover.stat().st_mtime, now.tzinfo) < cutoff:
            leftover.unlink(missing_ok=True)
    return len(expired)
