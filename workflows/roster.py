"""Roster import and export: the league's own ledgers (台账) of organisations, cadres and youth.

Admins keep these ledgers as spreadsheets with Chinese headers (English names are accepted as
aliases).  An import checks the whole file before it writes anything: a file with bad rows writes
nothing unless the caller accepts the good rows.  Rows are matched by organisation code, cadre
code and youth phone, so importing the same file again changes nothing, and an empty cell never
erases what the system already holds (a stale ledger must not wipe the branch a cadre chose in
May or the tags of a contacted youth).  Contacts are only ever added by an import.

Phone numbers are personal data: messages and logs show them masked (138****5678); only the
export, which is the admin's own ledger, carries them in full.
"""
from __future__ import annotations

import csv
import io
import logging
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from .contact_points import award_contact_points
from .models import ORG_KINDS, Cadre, Contact, Organisation, User, Youth
from .organisations import ALLOWED_PARENTS, KIND_NAMES_ZH, create_organisation, in_subtree, is_within
from .people import InvalidPhone, check_cadre_kind, mask_phone, new_user, normalise_phone

log = logging.getLogger(__name__)

LEDGERS = ("organisations", "cadres", "youth")
LEDGER_NAMES_ZH = {"organisations": "组织", "cadres": "团干部", "youth": "青年"}
CADRE_KIND_NAMES_ZH = {"full_time": "专职", "seconded": "挂职", "part_time": "兼职"}
# What a cadre may pick to guide in the education practice, and where they take part in fully.
GUIDED_COMMITTEE_KINDS = ("grassroots", "general_branch")
GUIDED_BRANCH_KIND = "branch"
LOAD_CHUNK = 1000  # keys per bulk-loading query
CADRE_CODE_SEPARATORS = re.compile(r"[;；,，、]")
SUPPORTED_SUFFIXES = (".xlsx", ".csv")

# Names that ledgers in the field use besides KIND_NAMES_ZH (a district committee is county level).
_EXTRA_ORG_KIND_NAMES = {"团县委": "county", "团区委": "county"}


class RosterFileError(ValueError):
    """A file that cannot be read as a ledger at all (wrong type, broken, unknown encoding)."""


@dataclass(frozen=True)
class Column:
    """One ledger column: the field it fills, its Chinese header (English alias: the field name)."""

    field: str
    header: str
    required: bool = False
    max_length: int | None = None


COLUMNS: dict[str, tuple[Column, ...]] = {
    "organisations": (
        Column("code", "组织编码", True, 64),
        Column("name", "组织名称", True, 200),
        Column("kind", "组织类型", True),
        Column("parent_code", "上级组织编码", False, 64),
    ),
    "cadres": (
        Column("code", "工号", True, 64),
        Column("name", "姓名", True, 100),
        Column("kind", "类型", True),
        Column("organisation_code", "所在组织编码", True, 64),
        Column("username", "账号", False, 64),
        Column("guided_committee_code", "联系指导的基层团委编码", False, 64),
        Column("guided_branch_code", "全程参与的团支部编码", False, 64),
    ),
    "youth": (
        Column("name", "姓名", True, 100),
        Column("phone", "手机号", True),
        Column("occupation", "职业", False, 64),
        Column("industry", "行业", False, 64),
        Column("cadre_codes", "联系团干部工号"),
    ),
}


@dataclass
class Sheet:
    """A ledger as read from a file: the header row and the data rows, each with its row number."""

    header: list[str]
    rows: list[tuple[int, list[str]]]  # (row number as the user sees it, header = row 1; cell texts)


@dataclass(frozen=True)
class RowProblem:
    """One thing wrong with one row: where it is (row, column) and why, in Chinese and English."""

    row: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"第{self.row}行 {self.column}: {self.reason}"


ROW_OUTCOMES = ("create", "update", "unchanged", "refused")


@dataclass(frozen=True)
class RowOutcome:
    """What an import does with one data row: ``create``, ``update``, ``unchanged`` or ``refused`` (with why).

    ``subject`` names the row's record as people know it (code and name; a youth's phone masked).
    """

    row: int
    subject: str
    outcome: str
    problems: tuple[RowProblem, ...] = ()


@dataclass
class ImportReport:
    """What an import found and did.

    The counts describe the good rows; they were written only when ``written`` is true (a clean
    file, or bad rows with ``accept_good_rows``).  ``rows`` has each data row's outcome in file
    order (empty when the header itself is wrong).
    """

    ledger: str
    problems: list[RowProblem] = field(default_factory=list)
    rows: list[RowOutcome] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    written: bool = False

    @property
    def bad_rows(self) -> int:
        """How many rows have at least one problem."""
        return len({p.row for p in self.problems})

    def summary(self) -> str:
        """One line of counts, for the CLI and logs."""
        return (f"{LEDGER_NAMES_ZH[self.ledger]}: 新增 {self.created} / created, 更新 {self.updated} / updated, "
                f"未变 {self.unchanged} / unchanged, 有误 {self.bad_rows} 行 / bad rows"
                + ("" if self.written else "; 未写入 / nothing written"))


def ledger_kind(name: str) -> str:
    """The ledger key ("organisations", "cadres", "youth") for an English key or Chinese name."""
    for key, name_zh in LEDGER_NAMES_ZH.items():
        if name in (key, name_zh):
            return key
    raise ValueError(f"未知的名册 {name!r}，应为 组织/团干部/青年 / unknown ledger; one of {', '.join(LEDGERS)}")


# --------------------------------------------------------------------------------------- reading

def read_roster_file(path: str | Path, max_rows: int | None = None) -> Sheet:
    """Read a ledger file: CSV (UTF-8 with or without BOM, or GB18030) or XLSX (first sheet).

    With ``max_rows``, a file of more data rows is refused as soon as the row past the limit is read.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise RosterFileError(f"不支持的文件类型「{suffix or '无扩展名'}」，请另存为 .xlsx 或 .csv / "
                              f"unsupported file type {suffix or '(none)'}; save it as .xlsx or .csv")
    if not path.is_file():
        raise RosterFileError(f"文件不存在 / no such file: {path}")
    if suffix == ".csv":
        return _sheet_from_table(_read_csv(path.read_bytes()), max_rows)
    workbook = _open_xlsx(path)
    try:
        return _sheet_from_table(_xlsx_rows(workbook), max_rows)
    finally:
        workbook.close()


def sheet_from_dicts(records: Iterable[Mapping[str, Any]]) -> Sheet:
    """A :class:`Sheet` of mappings keyed by header (the first one is row 2, as under a header row)."""
    records = list(records)
    header: list[str] = []
    for record in records:
        header.extend(key for key in record if key not in header)
    rows = [(number, [_cell_text(record.get(key)) for key in header])
            for number, record in enumerate(records, start=2)]
    return Sheet(header=header, rows=rows)


def _read_csv(raw: bytes) -> list[list[Any]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:  # what Excel on a Chinese Windows writes
            text = raw.decode("gb18030")
        except UnicodeDecodeError:
            raise RosterFileError("无法识别文件编码，请另存为 UTF-8 的 CSV / cannot tell the file's encoding; "
                                  "save it as UTF-8 CSV") from None
    try:
        return list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise RosterFileError(f"CSV 文件格式有误 / not a readable CSV file: {exc}") from None


def _open_xlsx(path: Path):
    try:
        return load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError) as exc:
        raise RosterFileError(f"不是有效的 .xlsx 文件 / not a readable .xlsx file ({type(exc).__name__})") from None


def _xlsx_rows(workbook) -> Iterator[tuple[Any, ...]]:
    if not workbook.worksheets:
        return iter(())
    sheet = workbook.worksheets[0]
    sheet.reset_dimensions()  # some writers store a wrong size; read every row there is
    return sheet.iter_rows(values_only=True)


def _sheet_from_table(table: Iterable[Iterable[Any]], max_rows: int | None = None) -> Sheet:
    lines = iter(table)
    first = next(lines, None)
    if first is None:
        return Sheet(header=[], rows=[])
    header = [_cell_text(value) for value in first]
    rows = []
    for number, values in enumerate(lines, start=2):
        cells = [_cell_text(value) for value in values]
        if any(cells):
            if max_rows is not None and len(rows) >= max_rows:
                raise RosterFileError(f"文件超过 {max_rows} 行数据，请分成几个文件导入 / the file has more than "
                                      f"{max_rows} data rows; split it into several files")
            rows.append((number, cells))
    return Sheet(header=header, rows=rows)


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone or code Excel stored as a number: 13812345678.0
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (date, time)):
        return value.isoformat()
    return str(value).strip()


# ------------------------------------------------------------------------------------- importing

def check_roster(session: Session, kind: str, rows: Sheet | Iterable[Mapping[str, Any]]) -> ImportReport:
    """Check a whole ledger against the database and report what an import would do; write nothing."""
    return _run(session, kind, rows, now=None, write=False, accept_good_rows=False)


def import_roster(session: Session, kind: str, rows: Sheet | Iterable[Mapping[str, Any]], now: datetime,
                  accept_good_rows: bool = False) -> ImportReport:
    """Check a whole ledger, then write it if it is clean (or write its good rows if accepted).

    ``rows`` is a :class:`Sheet` from :func:`read_roster_file` or mappings keyed by header.
    The caller commits.
    """
    return _run(session, kind, rows, now=now, write=True, accept_good_rows=accept_good_rows)


@dataclass(eq=False)
class _Row:
    number: int
    values: dict[str, str]
    problems: list[RowProblem] = field(default_factory=list)
    status: str | None = None  # "create", "update" or "unchanged", once found good
    parsed: dict[str, Any] = field(default_factory=dict)


def _run(session: Session, kind: str, rows: Sheet | Iterable[Mapping[str, Any]], now: datetime | None,
         write: bool, accept_good_rows: bool) -> ImportReport:
    ledger = ledger_kind(kind)
    sheet = rows if isinstance(rows, Sheet) else sheet_from_dicts(rows)
    report = ImportReport(ledger)
    positions, labels, header_problems = _match_header(ledger, sheet.header)
    if header_problems:
        report.problems = header_problems
        return report
    parsed = [_parse_row(ledger, number, cells, positions, labels) for number, cells in sheet.rows]
    planner = _PLANNERS[ledger](session, labels, parsed)
    planner.check()
    good = [row for row in parsed if not row.problems]
    report.problems = sorted((p for row in parsed for p in row.problems), key=lambda p: p.row)
    report.created = sum(row.status == "create" for row in good)
    report.updated = sum(row.status == "update" for row in good)
    report.unchanged = sum(row.status == "unchanged" for row in good)
    subject = _SUBJECTS[ledger]
    report.rows = [RowOutcome(row.number, subject(row), "refused" if row.problems else row.status or "refused",
                              tuple(row.problems)) for row in parsed]
    if write and (accept_good_rows or not report.problems):
        planner.write(good, now)
        report.written = True
    log.info("roster %s %s: %d created, %d updated, %d unchanged, %d bad rows, written=%s",
             "import" if write else "check", ledger, report.created, report.updated, report.unchanged,
             report.bad_rows, report.written)
    return report


def _header_key(text: str) -> str:
    key = re.sub(r"[\s_\-*＊]", "", text).lower()
    return key.replace("organization", "organisation")


def _match_header(ledger: str, header: list[str]) -> tuple[dict[str, int], dict[str, str], list[RowProblem]]:
    """Which column holds which field, the label of each field as the file writes it, and problems."""
    aliases = {}
    for column in COLUMNS[ledger]:
        aliases[_header_key(column.header)] = column.field
        aliases[_header_key(column.field)] = column.field
    positions: dict[str, int] = {}
    labels = {column.field: column.header for column in COLUMNS[ledger]}
    problems = []
    if not any(header):
        return positions, labels, [RowProblem(1, "表头 / header", "第1行应为表头，文件为空或缺少表头 / row 1 must be "
                                                                  "the header; the file is empty or has none")]
    for index, text in enumerate(header):
        field_name = aliases.get(_header_key(text))
        if field_name is None:
            continue  # extra columns such as 序号 or 备注 are the ledger keeper's own
        if field_name in positions:
            problems.append(RowProblem(1, text, f"与第{positions[field_name] + 1}列重复 / the same column as "
                                                f"column {positions[field_name] + 1}"))
            continue
        positions[field_name] = index
        labels[field_name] = text
    for column in COLUMNS[ledger]:
        if column.required and column.field not in positions:
            problems.append(RowProblem(1, column.header, f"缺少此列（英文列名 {column.field}）/ missing column "
                                                         f"(English name {column.field})"))
    return positions, labels, problems


def _parse_row(ledger: str, number: int, cells: list[str], positions: dict[str, int],
               labels: dict[str, str]) -> _Row:
    def cell(field_name: str) -> str:
        index = positions.get(field_name)
        return cells[index] if index is not None and index < len(cells) else ""

    values = {column.field: cell(column.field) for column in COLUMNS[ledger]}
    row = _Row(number, values)
    for column in COLUMNS[ledger]:
        value = values[column.field]
        if column.required and not value:
            row.problems.append(RowProblem(number, labels[column.field], "必填 / required"))
        elif column.max_length and len(value) > column.max_length:
            limit = column.max_length
            row.problems.append(RowProblem(number, labels[column.field],
                                           f"太长，最多{limit}个字 / too long, at most {limit} characters"))
    return row


def _chunks(keys: Iterable[Any]) -> Iterator[list[Any]]:
    unique = sorted({key for key in keys if key})
    for start in range(0, len(unique), LOAD_CHUNK):
        yield unique[start:start + LOAD_CHUNK]


def _load_organisations(session: Session, codes: Iterable[str]) -> dict[str, Organisation]:
    found = {}
    for chunk in _chunks(codes):
        for org in session.scalars(select(Organisation).where(Organisation.code.in_(chunk))):
            found[org.code] = org
    return found


class _Planner:
    """Checks the rows of one ledger against each other and the database, then writes the good ones."""

    def __init__(self, session: Session, labels: dict[str, str], rows: list[_Row]):
        self.session, self.labels, self.rows = session, labels, rows

    def refuse(self, row: _Row, field_name: str, reason: str) -> None:
        row.problems.append(RowProblem(row.number, self.labels[field_name], reason))

    def first_rows_by(self, field_name: str, value_of: Callable[[_Row], str | None],
                      describe: Callable[[str], str] = lambda value: value) -> dict[str, _Row]:
        """The first row of each value; later rows with the same value are refused on ``field_name``."""
        first: dict[str, _Row] = {}
        for row in self.rows:
            value = value_of(row)
            if not value:
                continue
            if value in first:
                shown, earlier = describe(value), first[value].number
                self.refuse(row, field_name, f"{shown} 与第{earlier}行重复 / {shown} repeats row {earlier}")
            else:
                first[value] = row
        return first

    def check(self) -> None:
        raise NotImplementedError

    def write(self, good: list[_Row], now: datetime) -> None:
        raise NotImplementedError


def _org_kind(text: str) -> str | None:
    if text in _EXTRA_ORG_KIND_NAMES:
        return _EXTRA_ORG_KIND_NAMES[text]
    for kind, name_zh in KIND_NAMES_ZH.items():
        if text == name_zh:
            return kind
    key = re.sub(r"[\s\-]+", "_", text.strip().lower())
    return key if key in ORG_KINDS else None


class _OrganisationPlanner(_Planner):
    """Organisations: parents may come from the database or from any row of the same file."""

    def check(self) -> None:
        for row in self.rows:
            if row.values["kind"]:
                kind = _org_kind(row.values["kind"])
                if kind is None:
                    names = "、".join(KIND_NAMES_ZH.values())
                    self.refuse(row, "kind", f"未知的组织类型「{row.values['kind']}」，应为{names} / unknown kind; "
                                             f"one of {', '.join(ORG_KINDS)}")
                row.parsed["kind"] = kind
        self.first_by_code = self.first_rows_by("code", lambda row: row.values["code"])
        self.existing = self._load_with_parent_codes(
            [row.values["code"] for row in self.rows] + [row.values["parent_code"] for row in self.rows])
        self.decided: dict[_Row, bool] = {}
        self.creation_order: list[_Row] = []  # parents before children
        for row in self.rows:
            self._decide_with_parents(row)

    def _load_with_parent_codes(self, codes: list[str]) -> dict[str, tuple[Organisation, str | None]]:
        parent = aliased(Organisation)
        found = {}
        for chunk in _chunks(codes):
            query = (select(Organisation, parent.code).outerjoin(parent, Organisation.parent_id == parent.id)
                     .where(Organisation.code.in_(chunk)))
            for org, parent_code in self.session.execute(query):
                found[org.code] = (org, parent_code)
        return found

    def _parent_row(self, row: _Row) -> _Row | None:
        """The row of this file that must be decided before ``row``: its parent, when that is new."""
        if row.problems or row.values["code"] in self.existing:
            return None
        parent_code = row.values["parent_code"]
        if not parent_code or parent_code in self.existing:
            return None
        return self.first_by_code.get(parent_code)

    def _decide_with_parents(self, row: _Row) -> None:
        # Walk up the file's parent chain without recursion (a file may hold a long chain), then
        # decide from the top down, so a parent defined later in the file is still created first.
        chain: list[_Row] = []
        in_chain: set[_Row] = set()
        current: _Row | None = row
        while current is not None and current not in self.decided:
            if current in in_chain:
                cycle = chain[chain.index(current):]
                for member in cycle:
                    self.refuse(member, "parent_code",
                                "上级组织不能是自己 / an organisation cannot be its own parent" if len(cycle) == 1
                                else "上级组织编码构成循环 / the parent codes form a cycle")
                    self.decided[member] = False
                break
            chain.append(current)
            in_chain.add(current)
            current = self._parent_row(current)
        for member in reversed(chain):
            if member not in self.decided:
                self._decide(member)

    def _decide(self, row: _Row) -> None:
        if not row.problems:
            code, name, kind = row.values["code"], row.values["name"], row.parsed["kind"]
            if code in self.existing:
                org, current_parent = self.existing[code]
                if row.values["parent_code"] != (current_parent or ""):
                    self.refuse(row, "parent_code", f"不能通过导入移动组织，系统中的上级组织是 {current_parent or '（无）'} / "
                                                    f"cannot move an organisation by import; its parent is "
                                                    f"{current_parent or 'none'}")
                if kind != org.kind:
                    self.refuse(row, "kind", f"不能通过导入更改组织类型，系统中是{KIND_NAMES_ZH[org.kind]} / cannot "
                                             f"change an organisation's kind by import; it is a {org.kind}")
                row.status = "update" if name != org.name else "unchanged"
            else:
                self._check_parent(row, kind)
                row.status = "create"
        self.decided[row] = not row.problems
        if not row.problems and row.status == "create":
            self.creation_order.append(row)

    def _check_parent(self, row: _Row, kind: str) -> None:
        allowed = ALLOWED_PARENTS[kind]
        parent_code = row.values["parent_code"]
        if not parent_code:
            if allowed:
                self.refuse(row, "parent_code", f"{KIND_NAMES_ZH[kind]}须填写上级组织编码 / a {kind} needs a parent")
            return
        if parent_code in self.existing:
            parent_kind = self.existing[parent_code][0].kind
        elif parent_code in self.first_by_code:
            parent_row = self.first_by_code[parent_code]
            if not self.decided.get(parent_row):
                self.refuse(row, "parent_code", f"上级组织 {parent_code}（第{parent_row.number}行）有误，本行不能导入 / "
                                                f"the parent {parent_code} (row {parent_row.number}) has errors")
                return
            parent_kind = parent_row.parsed["kind"]
        else:
            self.refuse(row, "parent_code", f"上级组织 {parent_code} 不存在（系统和本文件中都没有）/ no organisation "
                                            f"{parent_code} in the system or in this file")
            return
        if parent_kind not in allowed:
            self.refuse(row, "parent_code",
                        f"{KIND_NAMES_ZH[kind]}不能有上级组织 / a {kind} has no parent" if not allowed else
                        f"{KIND_NAMES_ZH[kind]}不能隶属于{KIND_NAMES_ZH[parent_kind]} / a {kind} cannot sit under "
                        f"a {parent_kind}")

    def write(self, good: list[_Row], now: datetime) -> None:
        created: dict[str, Organisation] = {}
        for row in self.creation_order:
            parent_code = row.values["parent_code"]
            parent = (self.existing[parent_code][0] if parent_code in self.existing
                      else created[parent_code] if parent_code else None)
            created[row.values["code"]] = create_organisation(self.session, row.values["code"], row.values["name"],
                                                              row.parsed["kind"], parent)
        for row in good:
            if row.status == "update":
                self.existing[row.values["code"]][0].name = row.values["name"]
        self.session.flush()


def _cadre_kind(text: str) -> str:
    for kind, name_zh in CADRE_KIND_NAMES_ZH.items():
        if text == name_zh:
            return kind
    return check_cadre_kind(re.sub(r"[\s\-]+", "_", text.strip().lower()))


class _CadrePlanner(_Planner):
    """Cadres: each with a user account (no password: the cadre sets it later), upserted by code."""

    def check(self) -> None:
        for row in self.rows:
            if row.values["kind"]:
                try:
                    row.parsed["kind"] = _cadre_kind(row.values["kind"])
                except ValueError as exc:
                    self.refuse(row, "kind", str(exc))
        self.first_rows_by("code", lambda row: row.values["code"])
        self.cadres = {cadre.code: cadre for chunk in _chunks(row.values["code"] for row in self.rows)
                       for cadre in self.session.scalars(select(Cadre).where(Cadre.code.in_(chunk)))}
        for row in self.rows:
            existing = self.cadres.get(row.values["code"])
            row.parsed["username"] = (row.values["username"] or (existing.user.username if existing else "")
                                      or row.values["code"])
        self.first_rows_by("username", lambda row: row.parsed["username"])
        self.users = {user.username: user for chunk in _chunks(row.parsed["username"] for row in self.rows)
                      for user in self.session.scalars(select(User).where(User.username.in_(chunk)))}
        self.orgs = _load_organisations(self.session, [row.values[name] for row in self.rows for name in
                                                       ("organisation_code", "guided_committee_code",
                                                        "guided_branch_code")])
        for row in self.rows:
            self._check_row(row)

    def _org(self, row: _Row, field_name: str) -> Organisation | None:
        code = row.values[field_name]
        if code and code not in self.orgs:
            self.refuse(row, field_name, f"组织 {code} 不存在（请先导入组织名册）/ no organisation {code} "
                                         f"(import the organisations ledger first)")
        return self.orgs.get(code)

    def _check_row(self, row: _Row) -> None:
        org = self._org(row, "organisation_code")
        committee = self._org(row, "guided_committee_code")
        branch = self._org(row, "guided_branch_code")
        if committee is not None and committee.kind not in GUIDED_COMMITTEE_KINDS:
            self.refuse(row, "guided_committee_code", f"应为基层团委或团总支，{committee.code} 是{KIND_NAMES_ZH[committee.kind]} "
                                                      f"/ must be a grassroots committee or general branch; "
                                                      f"{committee.code} is a {committee.kind}")
        if branch is not None:
            if branch.kind != GUIDED_BRANCH_KIND:
                self.refuse(row, "guided_branch_code", f"应为团支部，{branch.code} 是{KIND_NAMES_ZH[branch.kind]} / must be "
                                                       f"a branch; {branch.code} is a {branch.kind}")
            elif not row.values["guided_committee_code"]:
                self.refuse(row, "guided_branch_code", f"须同时填写{self.labels['guided_committee_code']} / needs the "
                                                       f"guided committee in the same row")
            elif committee is not None and not is_within(branch.path, committee.path):
                self.refuse(row, "guided_branch_code", f"团支部 {branch.code} 不在 {committee.code} 之下 / branch "
                                                       f"{branch.code} is not inside {committee.code}")
        cadre = self.cadres.get(row.values["code"])
        username = row.parsed["username"]
        if cadre is None:
            if username in self.users:
                self.refuse(row, "username", f"账号 {username} 已被占用 / username {username} is already taken")
            row.status = "create"
            return
        if username != cadre.user.username:
            self.refuse(row, "username", f"不能通过导入更改账号，系统中是 {cadre.user.username} / cannot change a "
                                         f"username by import; it is {cadre.user.username}")
        if committee is not None and committee.id != cadre.guided_committee_id and branch is None \
                and cadre.guided_branch_id is not None:
            self.refuse(row, "guided_branch_code", f"更换基层团委时须同时填写{self.labels['guided_branch_code']} / a new "
                                                   f"guided committee needs its branch too")
        if row.problems:
            return
        changed = (row.values["name"] != cadre.name or row.parsed["kind"] != cadre.kind
                   or org.id != cadre.organisation_id
                   or (committee is not None and committee.id != cadre.guided_committee_id)
                   or (branch is not None and branch.id != cadre.guided_branch_id))
        row.status = "update" if changed else "unchanged"

    def write(self, good: list[_Row], now: datetime) -> None:
        for row in good:
            values, org = row.values, self.orgs[row.values["organisation_code"]]
            committee = self.orgs.get(values["guided_committee_code"])
            branch = self.orgs.get(values["guided_branch_code"])
            if row.status == "create":
                user = new_user(row.parsed["username"], values["name"], now, organisation=org)
                self.session.add(user)
                self.session.add(Cadre(user=user, code=values["code"], name=values["name"], kind=row.parsed["kind"],
                                       organisation_id=org.id,
                                       guided_committee_id=committee.id if committee else None,
                                       guided_branch_id=branch.id if branch else None))
            elif row.status == "update":
                cadre = self.cadres[values["code"]]
                if cadre.name != values["name"]:
                    cadre.name = cadre.user.display_name = values["name"]
                if cadre.organisation_id != org.id:
                    cadre.organisation_id = cadre.user.organisation_id = org.id
                cadre.kind = row.parsed["kind"]
                if committee is not None:
                    cadre.guided_committee_id = committee.id
                if branch is not None:
                    cadre.guided_branch_id = branch.id
        self.session.flush()


class _YouthPlanner(_Planner):
    """Youth and their contacts, upserted by phone; contacts are only added, never ended."""

    def check(self) -> None:
        for row in self.rows:
            if row.values["phone"]:
                try:
                    row.parsed["phone"] = normalise_phone(row.values["phone"])
                except InvalidPhone as exc:  # its message never repeats the number
                    self.refuse(row, "phone", str(exc))
            row.parsed["cadre_codes"] = list(dict.fromkeys(
                code.strip() for code in CADRE_CODE_SEPARATORS.split(row.values["cadre_codes"]) if code.strip()))
        self.first_rows_by("phone", lambda row: row.parsed.get("phone"), describe=mask_phone)
        self.cadre_ids: dict[str, int] = {}
        for chunk in _chunks(code for row in self.rows for code in row.parsed["cadre_codes"]):
            query = select(Cadre.code, Cadre.id).where(Cadre.code.in_(chunk))
            self.cadre_ids.update((code, cadre_id) for code, cadre_id in self.session.execute(query))
        self.youth = {youth.phone: youth for chunk in _chunks(row.parsed.get("phone") for row in self.rows)
                      for youth in self.session.scalars(select(Youth).where(Youth.phone.in_(chunk)))}
        self.contacts: set[tuple[int, int]] = set()
        for chunk in _chunks(youth.id for youth in self.youth.values()):
            query = select(Contact.youth_id, Contact.cadre_id).where(Contact.youth_id.in_(chunk))
            self.contacts.update((youth_id, cadre_id) for youth_id, cadre_id in self.session.execute(query))
        for row in self.rows:
            self._check_row(row)

    def _check_row(self, row: _Row) -> None:
        unknown = [code for code in row.parsed["cadre_codes"] if code not in self.cadre_ids]
        if unknown:
            listed = "、".join(unknown)
            self.refuse(row, "cadre_codes", f"团干部工号 {listed} 不存在 / no cadre with code {', '.join(unknown)}")
        if row.problems:
            return
        youth = self.youth.get(row.parsed["phone"])
        if youth is None:
            row.status = "create"
            return
        values = row.values
        changed = (values["name"] != youth.name
                   or (values["occupation"] and values["occupation"] != youth.occupation)
                   or (values["industry"] and values["industry"] != youth.industry)
                   or any((youth.id, self.cadre_ids[code]) not in self.contacts for code in row.parsed["cadre_codes"]))
        row.status = "update" if changed else "unchanged"

    def write(self, good: list[_Row], now: datetime) -> None:
        youth_of_row: dict[_Row, Youth] = {}
        for row in good:
            values = row.values
            youth = self.youth.get(row.parsed["phone"])
            if youth is None:
                youth = Youth(name=values["name"], phone=row.parsed["phone"], occupation=values["occupation"] or None,
                              industry=values["industry"] or None)
                self.session.add(youth)
            elif row.status == "update":
                youth.name = values["name"]
                youth.occupation = values["occupation"] or youth.occupation
                youth.industry = values["industry"] or youth.industry
            youth_of_row[row] = youth
        self.session.flush()  # new youth get their ids in one batch
        for row, youth in youth_of_row.items():
            for code in row.parsed["cadre_codes"]:
                if (youth.id, self.cadre_ids[code]) not in self.contacts:
                    self.session.add(Contact(cadre_id=self.cadre_ids[code], youth_id=youth.id, since=now))
                    self.contacts.add((youth.id, self.cadre_ids[code]))
        self.session.flush()
        # New contacts and newly complete tags score now (联系人数, 绑定手机端); idempotent.
        award_contact_points(self.session, now, [youth.id for row, youth in youth_of_row.items()
                                                 if row.status in ("create", "update")])


_PLANNERS: dict[str, type[_Planner]] = {"organisations": _OrganisationPlanner, "cadres": _CadrePlanner,
                                        "youth": _YouthPlanner}


def _youth_subject(row: _Row) -> str:
    phone = row.parsed.get("phone")
    shown = mask_phone(phone) if phone else ("****" if row.values["phone"] else "")
    return " ".join(part for part in (row.values["name"], shown) if part)


_SUBJECTS: dict[str, Callable[[_Row], str]] = {
    "organisations": lambda row: " ".join(part for part in (row.values["code"], row.values["name"]) if part),
    "cadres": lambda row: " ".join(part for part in (row.values["code"], row.values["name"]) if part),
    "youth": _youth_subject,
}


# ------------------------------------------------------------------------------------- exporting

def export_roster(session: Session, kind: str, root_org: Organisation | None = None) -> bytes:
    """A ledger as an XLSX file with the import's Chinese headers, limited to ``root_org``'s subtree.

    Phones are in full: this is the admin's own ledger.  Importing the file again changes nothing.
    """
    ledger = ledger_kind(kind)
    rows = {"organisations": _organisation_rows, "cadres": _cadre_rows, "youth": _youth_rows}[ledger](session, root_org)
    return _workbook(ledger, rows)


def ledger_template(kind: str) -> bytes:
    """An empty ledger (the header row only) as an XLSX file: what to fill in for an import."""
    return _workbook(ledger_kind(kind), ())


def count_ledger_rows(session: Session, kind: str, root_org: Organisation | None = None,
                      at_most: int | None = None) -> int:
    """How many rows :func:`export_roster` would write (counting stops past ``at_most``: then ``at_most + 1``)."""
    ledger = ledger_kind(kind)
    if ledger == "organisations":
        query = select(Organisation.id)
        if root_org is not None:
            query = query.where(in_subtree(Organisation.path, root_org.path))
    elif ledger == "cadres":
        query = select(Cadre.id)
        if root_org is not None:
            query = query.join(Organisation, Cadre.organisation_id == Organisation.id) \
                .where(in_subtree(Organisation.path, root_org.path))
    elif root_org is None:
        query = select(Youth.id)
    else:
        query = (select(Contact.youth_id).join(Cadre, Contact.cadre_id == Cadre.id)
                 .join(Organisation, Cadre.organisation_id == Organisation.id)
                 .where(in_subtree(Organisation.path, root_org.path)).distinct())
    if at_most is not None:
        query = query.limit(at_most + 1)
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


def _workbook(ledger: str, rows: Iterable[list[str | None]]) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(LEDGER_NAMES_ZH[ledger])
    for index, column in enumerate(COLUMNS[ledger], start=1):
        sheet.column_dimensions[get_column_letter(index)].width = max(12, 2 * len(column.header) + 2)
    sheet.append([column.header for column in COLUMNS[ledger]])
    for values in rows:
        sheet.append([_text_cell(sheet, value) for value in values])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _text_cell(sheet, value: str | None) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=value or None)
    if value:
        cell.data_type = "s"  # text as text: a name starting with "=" must not become a formula
    return cell


def _organisation_rows(session: Session, root: Organisation | None) -> Iterator[list[str | None]]:
    parent = aliased(Organisation)
    query = (select(Organisation.code, Organisation.name, Organisation.kind, parent.code)
             .outerjoin(parent, Organisation.parent_id == parent.id).order_by(Organisation.path))
    if root is not None:
        query = query.where(in_subtree(Organisation.path, root.path))
    for code, name, kind, parent_code in session.execute(query):
        yield [code, name, KIND_NAMES_ZH[kind], parent_code]


def _cadre_rows(session: Session, root: Organisation | None) -> Iterator[list[str | None]]:
    org, committee, branch = aliased(Organisation), aliased(Organisation), aliased(Organisation)
    query = (select(Cadre.code, Cadre.name, Cadre.kind, org.code, User.username, committee.code, branch.code)
             .join(org, Cadre.organisation_id == org.id).join(User, Cadre.user_id == User.id)
             .outerjoin(committee, Cadre.guided_committee_id == committee.id)
             .outerjoin(branch, Cadre.guided_branch_id == branch.id)
             .order_by(org.path, Cadre.code))
    if root is not None:
        query = query.where(in_subtree(org.path, root.path))
    for code, name, kind, org_code, username, committee_code, branch_code in session.execute(query):
        yield [code, name, CADRE_KIND_NAMES_ZH[kind], org_code, username, committee_code, branch_code]


def _youth_rows(session: Session, root: Organisation | None) -> Iterator[list[str | None]]:
    contacts = (select(Contact.youth_id, Cadre.code).join(Cadre, Contact.cadre_id == Cadre.id)
                .order_by(Contact.youth_id, Cadre.code))
    youth = select(Youth).order_by(Youth.id)
    if root is not None:
        # A unit's ledger: the youth its cadres contact, with only its own cadres' codes.
        org = aliased(Organisation)
        contacts = contacts.join(org, Cadre.organisation_id == org.id).where(in_subtree(org.path, root.path))
        youth = youth.where(Youth.id.in_(contacts.with_only_columns(Contact.youth_id).order_by(None)))
    codes_of: dict[int, list[str]] = {}
    for youth_id, code in session.execute(contacts):
        codes_of.setdefault(youth_id, []).append(code)
    for person in session.scalars(youth):
        yield [person.name, person.phone, person.occupation, person.industry, ";".join(codes_of.get(person.id, []))]


__all__ = ["LEDGERS", "LEDGER_NAMES_ZH", "CADRE_KIND_NAMES_ZH", "COLUMNS", "Column", "Sheet", "RowProblem",
           "RowOutcome", "ROW_OUTCOMES", "ImportReport", "RosterFileError", "ledger_kind", "read_roster_file",
           "sheet_from_dicts", "check_roster", "import_roster", "export_roster", "ledger_template",
           "count_ledger_rows"]
