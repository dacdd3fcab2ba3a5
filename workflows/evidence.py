"""Evidence of recorded work ("data without a work process" is forbidden: 禁止“有数据无过程”).

An activity record carries a description, its participants and at least one photo or file.
Uploaded files are checked by their content (magic bytes), never by the name or the type the
browser declared; they are stored under a random name in a directory outside the web root, with
their size and SHA-256 recorded in :class:`EvidenceFile`.  The name the person gave is kept only
for display, sanitised, and never touches the file system.

The flow: the web layer calls :func:`store_evidence` for each upload (scoped to the process
instance the person is working in) and puts the returned ``stored_name`` in the task's
``evidence`` list; :func:`workflows.activities.record_activity` refuses a record without
evidence (:func:`require_evidence`) and links the stored files to the new activity
(:func:`attach_evidence`).  :func:`open_evidence` hands a stored file to an authorised reader.
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from sqlalchemy import ForeignKey, Index, Integer, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine.errors import EngineError, NotAllowed, NotFound
from engine.models import Base

from .models import Activity, Organisation
from .roles import Actor

MIB = 1024 * 1024
JPEG, PNG, PDF, MP4 = "image/jpeg", "image/png", "application/pdf", "video/mp4"
EXTENSIONS = {JPEG: ".jpg", PNG: ".png", PDF: ".pdf", MP4: ".mp4"}
TYPE_NAMES_ZH = {JPEG: "JPEG 图片", PNG: "PNG 图片", PDF: "PDF 文件", MP4: "MP4 视频"}
# ISO base-media brands of MP4 files as phones and cameras write them.
MP4_BRANDS = (b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ", b"MSNV", b"dash")
STORED_NAME = re.compile(r"^[0-9a-f]{32}$")
CHUNK = 64 * 1024


class EvidenceRefused(EngineError):
    """An upload or a record whose evidence does not meet the rules; the message says what to fix."""

    http_status = 422


@dataclass(frozen=True)
class EvidenceSettings:
    """Where evidence is stored and how much of it a file and a record may have.

    ``directory`` must lie outside ``web_root`` (the web layer passes its static folder), so a
    stored file can never be served without the authorisation check of :func:`open_evidence`.
    """

    directory: Path = Path("instance/evidence")
    max_file_bytes: int = 8 * MIB
    max_record_bytes: int = 40 * MIB
    max_files_per_record: int = 20
    allowed_types: tuple[str, ...] = (JPEG, PNG, PDF, MP4)
    web_root: Path | None = None

    def storage_directory(self) -> Path:
        """The resolved storage directory; refuses one inside the web root."""
        directory = Path(self.directory).resolve()
        if self.web_root is not None:
            root = Path(self.web_root).resolve()
            if directory == root or root in directory.parents:
                raise EvidenceRefused(f"佐证材料目录 {directory} 位于网站根目录内，文件会被直接访问 / the evidence "
                                      f"directory must lie outside the web root {root}")
        return directory


class EvidenceFile(Base):
    """One uploaded photo or file: who uploaded it, what it is, and which activity it proves."""

    __tablename__ = "evidence_file"
    __table_args__ = (Index("ix_evidence_file_activity", "activity_id"),
                      Index("ix_evidence_file_instance", "instance_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int | None] = mapped_column(ForeignKey("activity.id"))  # None until the record is made
    instance_id: Mapped[int | None] = mapped_column(Integer)  # the process the upload was made in
    original_name: Mapped[str] = mapped_column(String(255))  # sanitised, for display only
    stored_name: Mapped[str] = mapped_column(String(64), unique=True)
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime]


def sniff_content_type(head: bytes) -> str | None:
    """The type of a file from its first bytes (JPEG, PNG, PDF, MP4), or ``None`` for anything else."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"%PDF-"):
        return PDF
    if len(head) >= 12 and head[4:8] == b"ftyp" and head[8:12] in MP4_BRANDS:
        return MP4
    return None


def display_name(name: str | None, content_type: str | None = None) -> str:
    """A file name safe to show: no directories, control or invisible characters, at most 255 characters.

    The result is only ever displayed; it is never used as a path.
    """
    text = unicodedata.normalize("NFKC", str(name or ""))
    text = text.replace("\\", "/")
    text = PurePosixPath(text).name if "/" in text else text
    # Cc: controls incl. NUL; Cf: bidi overrides and zero-width marks; Cs/Co/Cn: nothing to show.
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn"))
    text = text.strip().lstrip(".").strip()
    if not text:
        text = "file" + EXTENSIONS.get(content_type or "", "")
    if len(text) > 255:
        stem, dot, ext = text.rpartition(".")
        text = (stem[:250 - len(ext)] + dot + ext) if dot and len(ext) <= 10 else text[:255]
    return text


def _read_limited(content: bytes | BinaryIO, limit: int) -> bytes:
    if isinstance(content, (bytes, bytearray, memoryview)):
        data = bytes(content)
    else:
        data = content.read(limit + 1)
    if len(data) > limit:
        raise EvidenceRefused(f"文件超过 {limit // MIB} MB 的大小限制 / the file is larger than the limit of "
                              f"{limit} bytes")
    return data


def _path_of(directory: Path, stored_name: str) -> Path:
    if not STORED_NAME.match(stored_name):
        raise NotFound(f"佐证材料 {stored_name!r} 不存在 / no evidence file {stored_name!r}")
    return directory / stored_name[:2] / stored_name


def store_evidence(session: Session, content: bytes | BinaryIO, original_name: str | None, uploaded_by: str,
                   now: datetime, settings: EvidenceSettings, instance_id: int | None = None) -> EvidenceFile:
    """Check and store one uploaded file; returns its row (flushed), whose ``stored_name`` the form refers to.

    Refuses (:class:`EvidenceRefused`) an empty file, a file over the per-file limit, a type not
    allowed by its content, and more than the per-record count or size for one process instance.
    """
    data = _read_limited(content, settings.max_file_bytes)
    if not data:
        raise EvidenceRefused("文件为空 / the file is empty")
    content_type = sniff_content_type(data[:16])
    if content_type is None or content_type not in settings.allowed_types:
        allowed = "、".join(TYPE_NAMES_ZH.get(t, t) for t in settings.allowed_types)
        raise EvidenceRefused(f"只能上传{allowed}（按文件内容判断，与文件名无关）/ only "
                              f"{', '.join(settings.allowed_types)} files are accepted, judged by their content")
    if instance_id is not None:
        count, total = session.execute(select(func.count(), func.coalesce(func.sum(EvidenceFile.size), 0))
                                       .where(EvidenceFile.instance_id == instance_id,
                                              EvidenceFile.activity_id.is_(None))).one()
        _check_record_limits(count + 1, total + len(data), settings)
    directory = settings.storage_directory()
    stored_name = secrets.token_hex(16)
    path = _path_of(directory, stored_name)
    path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".part")
    # O_EXCL: a random name that somehow exists is never overwritten.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    row = EvidenceFile(instance_id=instance_id, original_name=display_name(original_name, content_type),
                       stored_name=stored_name, content_type=content_type, size=len(data),
                       sha256=hashlib.sha256(data).hexdigest(), uploaded_by=uploaded_by, uploaded_at=now)
    session.add(row)
    session.flush()
    return row


def _check_record_limits(count: int, total: int, settings: EvidenceSettings) -> None:
    if count > settings.max_files_per_record:
        raise EvidenceRefused(f"一条记录最多 {settings.max_files_per_record} 个佐证文件 / at most "
                              f"{settings.max_files_per_record} evidence files per record")
    if total > settings.max_record_bytes:
        raise EvidenceRefused(f"一条记录的佐证材料合计不能超过 {settings.max_record_bytes // MIB} MB / the evidence of "
                              f"one record may not exceed {settings.max_record_bytes} bytes in total")


def require_evidence(description: str | None, youth_count: int | None, evidence: list | None) -> None:
    """Refuse a record without its work process: a description, participants, and photos or files."""
    missing = []
    if not (description or "").strip():
        missing.append(("活动过程说明", "a description"))
    if not youth_count or int(youth_count) < 1:
        missing.append(("参与青年人数", "the participants"))
    if not [ref for ref in (evidence or []) if str(ref).strip()]:
        missing.append(("照片或文件等佐证材料", "photos or files"))
    if missing:
        raise EvidenceRefused("禁止“有数据无过程”：记录缺少" + "、".join(zh for zh, _ in missing) + " / a record needs "
                              "evidence of the work; missing: " + ", ".join(en for _, en in missing))


def attach_evidence(session: Session, activity: Activity, refs: list | None,
                    settings: EvidenceSettings | None = None) -> list[EvidenceFile]:
    """Link the stored files named in ``refs`` (their ``stored_name``) to ``activity``.

    Only files not yet attached, uploaded in the same process instance (or outside any), are
    linked; other entries (e.g. file names typed in by hand before uploads existed) stay in the
    activity's ``evidence`` list as text.  The per-record count and size limits apply to the result.
    """
    settings = settings or EvidenceSettings()
    names = [str(ref) for ref in (refs or []) if STORED_NAME.match(str(ref))]
    if len(refs or []) > settings.max_files_per_record:
        _check_record_limits(len(refs or []), 0, settings)
    if not names:
        return []
    query = select(EvidenceFile).where(EvidenceFile.stored_name.in_(names), EvidenceFile.activity_id.is_(None))
    if activity.instance_id is not None:
        query = query.where((EvidenceFile.instance_id == activity.instance_id) | EvidenceFile.instance_id.is_(None))
    else:
        query = query.where(EvidenceFile.instance_id.is_(None))
    files = list(session.scalars(query.order_by(EvidenceFile.id)))
    _check_record_limits(len(files), sum(f.size for f in files), settings)
    for row in files:
        row.activity_id = activity.id
    session.flush()
    return files


def evidence_of(session: Session, activity_id: int) -> list[EvidenceFile]:
    """The stored files of an activity, in upload order."""
    return list(session.scalars(select(EvidenceFile).where(EvidenceFile.activity_id == activity_id)
                                .order_by(EvidenceFile.id)))


def may_read(session: Session, reader: Actor, row: EvidenceFile) -> bool:
    """Whether ``reader`` may see a file: its uploader, the activity's cadre, or staff over its organisation."""
    if row.uploaded_by == reader.username:
        return True
    if row.activity_id is None:
        return False
    activity = session.get(Activity, row.activity_id)
    if activity is None:
        return False
    if activity.cadre_id is not None and activity.cadre_id == reader.cadre_id:
        return True
    org_path = session.scalar(select(Organisation.path).where(Organisation.id == activity.organisation_id))
    return reader.oversees(org_path)


def open_evidence(session: Session, stored_name: str, reader: Actor,
                  settings: EvidenceSettings) -> tuple[EvidenceFile, BinaryIO]:
    """The row and an open binary file of a stored evidence file, for a reader allowed to see it.

    Raises :class:`NotFound` for an unknown name, :class:`NotAllowed` for anyone else, and
    :class:`EvidenceRefused` when the stored bytes no longer match their recorded size.  The
    caller closes the file; serve it with the recorded ``content_type`` and as an attachment.
    """
    row = session.scalar(select(EvidenceFile).where(EvidenceFile.stored_name == str(stored_name)))
    if row is None or not STORED_NAME.match(row.stored_name):
        raise NotFound(f"佐证材料 {stored_name!r} 不存在 / no evidence file {stored_name!r}")
    if not may_read(session, reader, row):
        raise NotAllowed(f"无权查看佐证材料「{row.original_name}」/ {reader.username} may not read this evidence file")
    path = _path_of(settings.storage_directory(), row.stored_name)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - handed to the caller, who closes it
    except FileNotFoundError:
        raise NotFound(f"佐证材料「{row.original_name}」的文件已丢失 / the stored file is missing") from None
    if os.fstat(handle.fileno()).st_size != row.size:
        handle.close()
        raise EvidenceRefused(f"佐证材料「{row.original_name}」已损坏 / the stored file does not match its record")
    return row, handle


def verify_evidence(row: EvidenceFile, settings: EvidenceSettings) -> bool:
    """Whether the stored bytes still have the recorded SHA-256."""
    digest = hashlib.sha256()
    try:
        with open(_path_of(settings.storage_directory(), row.stored_name), "rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                digest.update(chunk)
    except FileNotFoundError:
        return False
    return digest.hexdigest() == row.sha256
