"""The admin's roster page (名册导入): upload a ledger, read the dry run row by row, then confirm to apply it.

The same import as ``flask roster import`` (``workflows.roster``).  A file is checked as a whole
before anything is written: by default a file with any refused row writes nothing; the admin may
instead accept its good rows, and a refused row is never written in part.  The checked file waits
in ``ROSTER_UPLOAD_DIR`` (an hour at most) for the confirmation, which checks it again and writes
only if the outcome is still the one the admin read; otherwise the new report is shown.  Like
deploying a process, importing serves the whole province: only an admin of a top organisation may.
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path, PurePath
from urllib.parse import quote

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import RequestEntityTooLarge

from engine.errors import NotAllowed, NotFound
from workflows.organisations import by_code
from workflows.roster import (COLUMNS, LEDGERS, SUPPORTED_SUFFIXES, ImportReport, RosterFileError, check_roster,
                              count_ledger_rows, export_roster, import_roster, ledger_template, read_roster_file)

from .admin import may_deploy
from .extensions import db
from .runtime import current_engine
from .session_user import current_actor

bp = Blueprint("roster_pages", __name__, url_prefix="/admin/roster")

MAX_FILE_BYTES = 10 * 1024 * 1024   # a unit's ledger; a province's goes through `flask roster import`
MAX_ROWS = 20_000                   # data rows per file (20,000 youth rows: check 0.2 s, import 3.5 s on SQLite)
MAX_EXPORT_ROWS = 50_000            # larger exports: choose an organisation, or `flask roster export`
REPORT_ROWS_SHOWN = 1_000           # rows listed on the report page (refused rows first among them)
UPLOAD_MAX_AGE = 3600               # seconds a checked file waits for its confirmation
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LEDGER_LABELS = {"organisations": _l("组织"), "cadres": _l("团干部"), "youth": _l("青年")}
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


def _limit(name: str, default: int) -> int:
    return int(current_app.config.get(f"ROSTER_{name}", default))


def _size_text(size: int) -> str:
    if size >= 1024 * 1024:
        return _("%(n)s MB", n=f"{size / (1024 * 1024):g}")
    return _("%(n)s KB", n=size // 1024) if size >= 1024 else _("%(n)s 字节", n=size)


def _too_large_message() -> str:
    return _("文件过大：名册文件不超过 %(size)s，请拆分成几个文件后分别导入；未写入任何数据。",
             size=_size_text(_limit("MAX_FILE_BYTES", MAX_FILE_BYTES)))


@bp.before_request
@login_required
def _admins_only():
    if not may_deploy(current_actor()):
        raise NotAllowed("只有省级管理员可以导入名册 / only an admin of the top organisation may import ledgers")


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(error):
    # Raised while the body is read (before the view runs): say it in this page's terms.
    message = _too_large_message()
    if current_user.is_authenticated and may_deploy(current_actor()):
        return _form_page(message, 413)
    return render_template("error.html", status=413, message=message, errors=[]), 413


# ------------------------------------------------------------------------------- the staged upload

@dataclass(frozen=True)
class StagedUpload:
    """A checked roster file waiting for its confirmation: who sent it, which ledger, the report it gave."""

    upload_id: str
    username: str
    ledger: str
    filename: str
    suffix: str
    digest: str

    @staticmethod
    def directory() -> Path:
        """Where staged files live (created on first use)."""
        path = Path(current_app.config["ROSTER_UPLOAD_DIR"])
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def path(self) -> Path:
        """The file itself (its suffix tells the reader CSV from XLSX)."""
        return self.directory() / f"{self.upload_id}{self.suffix}"

    def save_meta(self) -> None:
        """Write who staged it and the digest of the report they read."""
        meta = {"username": self.username, "ledger": self.ledger, "filename": self.filename, "suffix": self.suffix,
                "digest": self.digest}
        (self.directory() / f"{self.upload_id}.json").write_text(json.dumps(meta, ensure_ascii=False), "utf-8")

    def discard(self) -> None:
        """Delete the file and its meta."""
        for path in (self.path, self.directory() / f"{self.upload_id}.json"):
            path.unlink(missing_ok=True)


def _sweep_stale_uploads() -> None:
    cutoff = time.time() - UPLOAD_MAX_AGE
    for path in StagedUpload.directory().iterdir():
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
        except OSError:
            continue  # another web process removed it first


def _staged(upload_id: str) -> StagedUpload:
    """The upload ``upload_id`` of the signed-in admin, or :class:`NotFound` when it expired or is not theirs."""
    gone = NotFound("预检的文件已过期或不存在，请重新上传 / the checked file has expired or does not exist; upload it again")
    if not _UPLOAD_ID.match(upload_id or ""):
        raise gone
    meta_path = StagedUpload.directory() / f"{upload_id}.json"
    try:
        meta = json.loads(meta_path.read_text("utf-8"))
        if time.time() - meta_path.stat().st_mtime > UPLOAD_MAX_AGE:
            raise gone
    except (OSError, ValueError):
        raise gone from None
    if meta.get("username") != current_actor().username or meta.get("ledger") not in LEDGERS \
            or meta.get("suffix") not in SUPPORTED_SUFFIXES:
        raise gone
    return StagedUpload(upload_id, meta["username"], meta["ledger"], str(meta.get("filename") or ""), meta["suffix"],
                        str(meta.get("digest") or ""))


def report_digest(report: ImportReport) -> str:
    """A fingerprint of what an import would do row by row (to confirm exactly what was shown)."""
    outline = [[row.row, row.outcome, [[p.column, p.reason] for p in row.problems]] for row in report.rows]
    outline.append([[p.row, p.column, p.reason] for p in report.problems if p.row == 1])
    return hashlib.sha256(json.dumps(outline, ensure_ascii=False).encode("utf-8")).hexdigest()


# ------------------------------------------------------------------------------------------ pages

def _form_page(error: str | None = None, status: int = 200, ledger: str | None = None):
    return render_template("admin_roster.html", ledgers=LEDGERS, ledger_names=LEDGER_LABELS, columns=COLUMNS,
                           error=error, chosen=ledger, max_size=_size_text(_limit("MAX_FILE_BYTES", MAX_FILE_BYTES)),
                           max_rows=_limit("MAX_ROWS", MAX_ROWS),
                           max_export_rows=_limit("MAX_EXPORT_ROWS", MAX_EXPORT_ROWS)), status


def _report_page(staged: StagedUpload, report: ImportReport, status: int = 200, changed: bool = False):
    refused = [row for row in report.rows if row.outcome == "refused"]
    shown_limit = REPORT_ROWS_SHOWN
    first = refused[:shown_limit]
    others = [row for row in report.rows if row.outcome != "refused"][:shown_limit - len(first)]
    shown = sorted(first + others, key=lambda row: row.row)
    return render_template("admin_roster_report.html", staged=staged, report=report, rows=shown,
                           hidden=len(report.rows) - len(shown), refused=len(refused),
                           header_problems=[p for p in report.problems if p.row == 1],
                           ledger_name=LEDGER_LABELS[report.ledger], changed=changed), status


@bp.get("")
def index():
    """The upload form, the rules of an import, templates and exports."""
    return _form_page()


@bp.post("/check")
def check():
    """Check an uploaded ledger and show what importing it would do, row by row; nothing is written."""
    ledger = request.form.get("ledger", "")
    if ledger not in LEDGERS:
        return _form_page(_("请选择名册类型（组织、团干部或青年）。"), 422)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _form_page(_("请选择要上传的名册文件。"), 422, ledger)
    filename = PurePath(upload.filename.replace("\\", "/")).name[:200]
    suffix = PurePath(filename).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        return _form_page(_("不支持的文件类型「%(suffix)s」：请上传 .xlsx 或 .csv 文件（可先下载模板）。",
                            suffix=suffix or _("无扩展名")), 422, ledger)
    upload.stream.seek(0, 2)
    size = upload.stream.tell()
    upload.stream.seek(0)
    if size > _limit("MAX_FILE_BYTES", MAX_FILE_BYTES):
        return _form_page(_too_large_message(), 413, ledger)
    if size == 0:
        return _form_page(_("上传的文件是空的。"), 422, ledger)
    _sweep_stale_uploads()
    staged = StagedUpload(secrets.token_hex(16), current_actor().username, ledger, filename, suffix, "")
    upload.save(staged.path)
    try:
        sheet = read_roster_file(staged.path, max_rows=_limit("MAX_ROWS", MAX_ROWS))
    except RosterFileError as error:
        staged.discard()
        return _form_page(str(error), 422, ledger)
    report = check_roster(db.session, ledger, sheet)
    db.session.rollback()
    staged = StagedUpload(staged.upload_id, staged.username, ledger, filename, suffix, report_digest(report))
    staged.save_meta()
    return _report_page(staged, report, 422 if report.problems else 200)


@bp.post("/apply")
def apply():
    """Import a checked file, if it would still do what its report said; otherwise show the new report."""
    staged = _staged(request.form.get("upload", ""))
    accept_good_rows = request.form.get("good_rows") == "1"
    try:
        sheet = read_roster_file(staged.path, max_rows=_limit("MAX_ROWS", MAX_ROWS))
    except RosterFileError:
        staged.discard()
        raise NotFound("预检的文件已过期或不存在，请重新上传 / the checked file has expired or does not exist; "
                       "upload it again") from None
    try:
        report = import_roster(db.session, staged.ledger, sheet, current_engine().clock.now(),
                               accept_good_rows=accept_good_rows)
        changed = report_digest(report) != staged.digest
        if changed or not report.written:
            db.session.rollback()
        else:
            db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return _form_page(_("导入期间数据被他人修改，未写入任何数据；请重新上传并预检。"), 409, staged.ledger)
    if changed:
        # The database moved since the dry run: show what the file would do now, and ask again.
        staged = StagedUpload(staged.upload_id, staged.username, staged.ledger, staged.filename, staged.suffix,
                              report_digest(report))
        staged.save_meta()
        report.written = False
        return _report_page(staged, report, 409, changed=True)
    if not report.written:
        return _report_page(staged, report, 422)
    staged.discard()
    flash(_("已导入%(ledger)s名册「%(file)s」：新增 %(created)d 行，更新 %(updated)d 行，未变 %(unchanged)d 行，"
            "有误未导入 %(bad)d 行。", ledger=LEDGER_LABELS[report.ledger], file=staged.filename,
            created=report.created, updated=report.updated, unchanged=report.unchanged, bad=report.bad_rows))
    return redirect(url_for("roster_pages.index"))


@bp.post("/discard")
def discard():
    """Drop a checked file without importing it."""
    try:
        _staged(request.form.get("upload", "")).discard()
    except NotFound:
        pass
    flash(_("已放弃导入，未写入任何数据。"))
    return redirect(url_for("roster_pages.index"))


def _xlsx(data: bytes, filename: str) -> Response:
    return Response(data, mimetype=XLSX, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}", "Cache-Control": "no-store"})


@bp.get("/template/<ledger>.xlsx")
def template(ledger: str):
    """An empty ledger with the headers an import reads."""
    if ledger not in LEDGERS:
        raise NotFound(f"没有名册 {ledger} / no ledger {ledger}")
    return _xlsx(ledger_template(ledger), f"{ledger}-template.xlsx")


@bp.get("/export/<ledger>.xlsx")
def export(ledger: str):
    """The current ledger (of one organisation's subtree with ``?org=``), phones in full: the admin's own."""
    if ledger not in LEDGERS:
        raise NotFound(f"没有名册 {ledger} / no ledger {ledger}")
    code = (request.args.get("org") or "").strip()
    root = by_code(db.session, code) if code else None
    limit = _limit("MAX_EXPORT_ROWS", MAX_EXPORT_ROWS)
    if count_ledger_rows(db.session, ledger, root, at_most=limit) > limit:
        return _form_page(_("%(ledger)s名册超过 %(n)s 行，网页上不能直接导出：请填写组织编码只导出其下级，或在服务器上运行 "
                            "flask roster export。", ledger=LEDGER_LABELS[ledger], n=limit), 422, ledger)
    return _xlsx(export_roster(db.session, ledger, root), f"{ledger}-{code or 'all'}.xlsx")


__all__ = ["bp", "StagedUpload", "report_digest"]
