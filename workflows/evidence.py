"""Evidence of recorded work ("data without a work process" is forbidden: 禁止“有数据无过程”).

An activity record carries a description, its participants and at least one photo or file.
Uploaded files are checked by their content (magic bytes), never by the name or the type the
browser declared; they are stored under a random name in a directory outside the web root, with
their size and SHA-256 recorded in :class:`EvidenceFile`.  The name the person gave is kept only
for display, sanitised, and never touches the file system.

The flow: the task page stores a form's new files with :func:`stage_uploads` (all or none, the
files *staged*: no instance, no activity yet) and puts their ``stored_name`` in the task's evidence
field (:func:`evidence_fields` says which fields take files); when the task completes, the engine's
audit listener :func:`keep_evidence_from_audit` links the files named in the completed data to the
process instance.  :func:`workflows.activities.record_activity` refuses a record without evidence
(:func:`require_evidence`) and links the stored files to the new activity (:func:`attach_evidence`).
Staged files nobody completed a task with are deleted after a day (workflows/evidence_jobs.py).
:func:`open_evidence` hands a stored file to an authorised reader.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import secrets
import unicodedata
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from sqlalchemy import ForeignKey, Index, Integer, String, delete, func, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine.errors import EngineError, NotAllowed, NotFound
from engine.models import Base, ProcessInstance

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
    check_whole: bool = True  # refuse a file cut short (an interrupted upload): see :func:`is_whole`

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
    # The process whose task was completed with the file; None while staged (uploaded, task not yet done).
    instance_id: Mapped[int | None] = mapped_column(Integer)
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


def is_whole(data: bytes, content_type: str) -> bool:
    """Whether a file of a sniffed type is complete: an image decodes, a PDF has its end, an MP4's boxes add up.

    A photo cut short by a dropped connection starts with the right bytes; this catches it.
    """
    if content_type in (JPEG, PNG):
        return _image_decodes(data, "JPEG" if content_type == JPEG else "PNG")
    if content_type == PDF:
        return b"%%EOF" in data[-4096:]
    if content_type == MP4:
        return _mp4_boxes_whole(data)
    return True


def _image_decodes(data: bytes, image_format: str) -> bool:
    from PIL import Image  # imported on first use: only uploads need it
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[image_format]) as image:
                if image_format == "JPEG":  # decode at 1/8 scale: every byte is still read, far less work
                    image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
                image.load()
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError, Image.DecompressionBombError,
            Image.DecompressionBombWarning):
        return False
    return True


def _mp4_boxes_whole(data: bytes) -> bool:
    """Whether the top-level ISO-BMFF boxes fill the file exactly and include the movie header (``moov``)."""
    offset, kinds = 0, set()
    while offset < len(data):
        if offset + 8 > len(data):
            return False
        size, kind, header = int.from_bytes(data[offset:offset + 4], "big"), data[offset + 4:offset + 8], 8
        if size == 1:  # a 64-bit size follows the type
            if offset + 16 > len(data):
                return False
            size, header = int.from_bytes(data[offset + 8:offset + 16], "big"), 16
        elif size == 0:  # the box runs to the end of the file
            size = len(data) - offset
        if size < header or offset + size > len(data):
            return False
        kinds.add(kind)
        offset += size
    return b"moov" in kinds


def display_name(name: str | None, content_type: str | None = None) -> str:
    """A file name safe to show: no directories, control or invisible characters, at most 255 characters.

    The result is only ever displayed; it is never used as a path.
    """
    text = unicodedata.normalize("NFKC", str(name or ""))
    text = text.replace("\\", "/")
    text = PurePosixPath(text).name if "/" in text else text
    # Cc: controls incl. NUL; Cf: bidi overrides and zero-width marks; Cs/Co/Cn: nothing to show.
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn"))
    text = re.sub(r"^[\s.]+|[\s.]+$", "", text)  # no hidden files, no names of only dots and spaces
    if not text:
        text = "file" + EXTENSIONS.get(content_type or "", "")
    if len(text) > 255:
        stem, dot, ext = text.rpartition(".")
        text = (stem[:250 - len(ext)] + dot + ext) if dot and len(ext) <= 10 else text[:255]
    return text


def size_text(size: int) -> str:
    """A byte count as people read it: 820 B, 64 KB, 8 MB, 2.5 MB."""
    if size < 1024:
        return f"{size} B"
    if size < MIB:
        return f"{size / 1024:.0f} KB"
    return f"{size / MIB:.1f}".removesuffix(".0") + " MB"


def _read_limited(content: bytes | BinaryIO, limit: int) -> bytes:
    if isinstance(content, (bytes, bytearray, memoryview)):
        data = bytes(content)
    else:
        data = content.read(limit + 1)
    if len(data) > limit:
        raise EvidenceRefused(f"文件超过 {size_text(limit)} 的大小限制 / the file is larger than the limit of "
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
    directory = settings.storage_directory()  # a directory inside the web root is refused before anything else
    data = _read_limited(content, settings.max_file_bytes)
    if not data:
        raise EvidenceRefused("文件为空 / the file is empty")
    content_type = sniff_content_type(data[:16])
    if content_type is None or content_type not in settings.allowed_types:
        allowed = "、".join(TYPE_NAMES_ZH.get(t, t) for t in settings.allowed_types)
        raise EvidenceRefused(f"只能上传{allowed}（按文件内容判断，与文件名无关）/ only "
                              f"{', '.join(settings.allowed_types)} files are accepted, judged by their content")
    if settings.check_whole and not is_whole(data, content_type):
        raise EvidenceRefused(f"文件不完整或已损坏（可能上传中断），请重新选择原文件上传 / the {content_type} file is "
                              "incomplete or damaged (perhaps the upload was cut off); upload the original again")
    if instance_id is not None:
        count, total = session.execute(select(func.count(), func.coalesce(func.sum(EvidenceFile.size), 0))
                                       .where(EvidenceFile.instance_id == instance_id,
                                              EvidenceFile.activity_id.is_(None))).one()
        _check_record_limits(count + 1, total + len(data), settings)
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
    try:
        session.flush()
    except BaseException:  # no row, no file
        path.unlink(missing_ok=True)
        raise
    return row


def _check_record_limits(count: int, total: int, settings: EvidenceSettings) -> None:
    if count > settings.max_files_per_record:
        raise EvidenceRefused(f"一条记录最多 {settings.max_files_per_record} 个佐证文件 / at most "
                              f"{settings.max_files_per_record} evidence files per record")
    if total > settings.max_record_bytes:
        raise EvidenceRefused(f"一条记录的佐证材料合计不能超过 {size_text(settings.max_record_bytes)} / the evidence "
                              f"of one record may not exceed {settings.max_record_bytes} bytes in total")


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
    """Whether ``reader`` may see a file: its uploader, the activity's cadre, staff over its organisation,
    or whoever may see the data of the process instance whose task was completed with it."""
    if row.uploaded_by == reader.username:
        return True
    if row.instance_id is not None and _may_see_instance_data(session, reader, row.instance_id):
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


def _may_see_instance_data(session: Session, reader: Actor, instance_id: int) -> bool:
    from .inbox import instance_rights  # the instance-level rights every page uses
    instance = session.get(ProcessInstance, instance_id)
    return instance is not None and instance_rights(session, reader, instance).data


# ------------------------------------------------------------------------ uploads through task forms

def is_evidence_property(name: str, prop: Any) -> bool:
    """Whether a form property takes evidence files.

    ``"x-evidence": true`` (or ``false``) in the property decides; without it, an array of strings
    named ``evidence`` or ``…_evidence`` does (the programme's forms name their evidence that way).
    """
    if not isinstance(prop, dict):
        return False
    if "x-evidence" in prop:
        return prop["x-evidence"] is True
    items = prop.get("items")
    return (prop.get("type") == "array" and isinstance(items, dict) and items.get("type") == "string"
            and (name == "evidence" or name.endswith("_evidence")))


def evidence_fields(schema: dict | None) -> list[str]:
    """The names of a form's properties that take evidence files, in the form's order."""
    properties = (schema or {}).get("properties") or {}
    return [name for name, prop in properties.items() if is_evidence_property(name, prop)]


def usable_refs(session: Session, refs: Iterable[str], uploader: str,
                instance_id: int) -> tuple[list[EvidenceFile], list[str]]:
    """The files a form may carry, in the given order, and the refs it may not.

    A form may carry its uploader's staged files (not yet completed with any task) and the files
    already completed with a task of the same instance; anything else (another person's file, a
    file since deleted, a made-up name) is returned in the second list.
    """
    refs = list(dict.fromkeys(str(ref) for ref in refs))  # each once, in order
    wanted = [ref for ref in refs if STORED_NAME.match(ref)]
    rows = {}
    if wanted:
        staged = (EvidenceFile.uploaded_by == uploader) & EvidenceFile.instance_id.is_(None) \
            & EvidenceFile.activity_id.is_(None)
        query = select(EvidenceFile).where(EvidenceFile.stored_name.in_(wanted),
                                           or_(staged, EvidenceFile.instance_id == instance_id))
        rows = {row.stored_name: row for row in session.scalars(query)}
    return [rows[ref] for ref in refs if ref in rows], [ref for ref in refs if ref not in rows]


def _about(name: str, refused: EvidenceRefused) -> EvidenceRefused:
    """The same refusal, naming the file in both languages."""
    chinese, _sep, english = refused.message.partition(" / ")
    return EvidenceRefused(f"「{name}」{chinese} / {name}: {english or chinese}")


def stage_uploads(session: Session, uploads: list[tuple[str | None, bytes | BinaryIO]], kept: list[EvidenceFile],
                  uploader: str, now: datetime, settings: EvidenceSettings) -> list[EvidenceFile]:
    """Store a form's new files, all or none, beside the files it already carries (``kept``); returns their rows.

    ``uploads`` are (name the device gave, bytes or stream).  The rows are flushed and *staged*
    (no instance, no activity) until a task is completed with them.  Refuses (:class:`EvidenceRefused`,
    naming the file) a file that breaks a rule of :func:`store_evidence`, or more files or bytes than
    one record may have counting ``kept``; then every file of this call is removed from the disk and
    the caller rolls back the session, so nothing of it remains.
    """
    if len(kept) + len(uploads) > settings.max_files_per_record:
        raise EvidenceRefused(f"一条记录最多 {settings.max_files_per_record} 个佐证文件，本次共 "
                              f"{len(kept) + len(uploads)} 个，请减少后再提交 / at most "
                              f"{settings.max_files_per_record} evidence files per record, this form has "
                              f"{len(kept) + len(uploads)}")
    stored: list[EvidenceFile] = []
    total = sum(row.size for row in kept)
    try:
        for name, content in uploads:
            shown = display_name(name)
            try:
                row = store_evidence(session, content, name, uploader, now, settings)
            except EvidenceRefused as refused:
                raise _about(shown, refused) from None
            stored.append(row)
            total += row.size
            if total > settings.max_record_bytes:
                raise _about(shown, EvidenceRefused(
                    f"加上这个文件，佐证材料合计超过 {size_text(settings.max_record_bytes)} / with this file the "
                    f"evidence exceeds {settings.max_record_bytes} bytes in total"))
    except BaseException:
        remove_stored_files(settings, [row.stored_name for row in stored])
        raise
    return stored


def _stored_names(value: Any) -> list[str]:
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str) and STORED_NAME.match(item)]
    return []


def keep_evidence_from_audit(session: Session, events: list[dict[str, Any]]) -> None:
    """The engine listener: a completed task's staged files (named in its data) now belong to its instance.

    Only the completer's own staged files are linked, in the transaction of the completion.
    """
    for event in events:
        if event.get("kind") != "task_completed" or not isinstance(event.get("after"), dict):
            continue
        names = [name for value in event["after"].values() for name in _stored_names(value)]
        if names and event.get("instance_id") is not None and event.get("actor"):
            session.execute(update(EvidenceFile).where(
                EvidenceFile.stored_name.in_(names), EvidenceFile.instance_id.is_(None),
                EvidenceFile.uploaded_by == event["actor"]).values(instance_id=event["instance_id"])
                .execution_options(synchronize_session=False))


def evidence_shown_with(session: Session, instance_id: int, activity_id: int | None = None,
                        limit: int = 100) -> list[EvidenceFile]:
    """The files an instance shows: those completed with its tasks, and those of the record it is about
    (``activity_id``: the record a spot check checks), in upload order."""
    condition = EvidenceFile.instance_id == instance_id
    if activity_id is not None:
        condition = or_(condition, EvidenceFile.activity_id == activity_id)
    return list(session.scalars(select(EvidenceFile).where(condition).order_by(EvidenceFile.id).limit(limit)))


# ------------------------------------------------------------------------------ removing staged files

def abandoned_evidence(session: Session, uploaded_before: datetime, limit: int = 500) -> list[int]:
    """Ids of staged files (no task completed with them, no activity) uploaded before ``uploaded_before``."""
    return list(session.scalars(select(EvidenceFile.id).where(
        EvidenceFile.instance_id.is_(None), EvidenceFile.activity_id.is_(None),
        EvidenceFile.uploaded_at < uploaded_before).order_by(EvidenceFile.id).limit(limit)))


def delete_staged(session: Session, ids: list[int]) -> list[str]:
    """Delete the rows of those files that are still staged; returns their stored names.

    The condition is checked again by the DELETE itself, so a file a task was completed with a
    moment ago is kept.  Commit, then :func:`remove_stored_files` the names.
    """
    if not ids:
        return []
    return list(session.scalars(delete(EvidenceFile).where(
        EvidenceFile.id.in_(ids), EvidenceFile.instance_id.is_(None), EvidenceFile.activity_id.is_(None))
        .returning(EvidenceFile.stored_name).execution_options(synchronize_session=False)))


def remove_stored_files(settings: EvidenceSettings, stored_names: Iterable[str]) -> int:
    """Remove stored files from the disk (after their rows are gone); returns how many were there."""
    directory, removed = settings.storage_directory(), 0
    for name in stored_names:
        try:
            _path_of(directory, name).unlink()
            removed += 1
        except (FileNotFoundError, NotFound):
            pass
    return removed
