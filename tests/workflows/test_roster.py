"""Roster import and export (organisations, cadres, youth ledgers) on SQLite and PostgreSQL."""
from __future__ import annotations

import csv
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import event, func, select

from workflows.models import Cadre, Contact, Organisation, User, Youth
from workflows.organisations import by_code, is_within
from workflows.roster import (COLUMNS, LEDGERS, RosterFileError, check_roster, export_roster, import_roster,
                              read_roster_file)

ORG_HEADER = ["组织编码", "组织名称", "组织类型", "上级组织编码"]
ORG_ROWS = [
    ["sd", "山东团省委", "团省委", ""],
    ["qd", "青岛团市委", "团市委", "sd"],
    ["qd-shinan", "市南区团委", "县级团委", "qd"],
    ["qd-shinan-bdg", "八大关街道团工委", "基层团委", "qd-shinan"],
    ["qd-shinan-bdg-1", "八大关社区团支部", "团支部", "qd-shinan-bdg"],
    ["yt", "烟台团市委", "city", "sd"],
]
CADRE_HEADER = ["工号", "姓名", "类型", "所在组织编码", "账号", "联系指导的基层团委编码", "全程参与的团支部编码"]
CADRE_ROWS = [
    ["c001", "张伟", "专职", "qd-shinan", "zhangwei", "qd-shinan-bdg", "qd-shinan-bdg-1"],
    ["c002", "李娜", "兼职", "qd", "", "", ""],
    ["c003", "王芳", "seconded", "yt", "", "", ""],
]
YOUTH_HEADER = ["姓名", "手机号", "职业", "行业", "联系团干部工号"]
YOUTH_ROWS = [
    ["小王", "13812345678", "学生", "教育", "c001；c002"],
    ["小李", "+86 139-1234-5678", "", "", "c001"],
    ["小赵", "15012345678", "工人", "制造业", "c003"],
]
PHONES = ["13812345678", "13912345678", "15012345678"]


def write_csv(path: Path, header: list[str], rows: list[list], encoding: str = "utf-8-sig") -> Path:
    """A CSV ledger file."""
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_xlsx(path: Path, header: list[str], rows: list[list]) -> Path:
    """An XLSX ledger file with the header in row 1 of the first sheet."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def load(session, kind: str, path: Path, clock, **options):
    """Import one ledger file and commit."""
    report = import_roster(session, kind, read_roster_file(path), clock.now(), **options)
    session.commit()
    return report


def counts(session) -> dict[str, int]:
    """Rows per table of the people and organisations model."""
    return {model.__name__: session.scalar(select(func.count()).select_from(model))
            for model in (Organisation, User, Cadre, Youth, Contact)}


def located(report) -> set[tuple[int, str]]:
    """The (row, column) of every problem."""
    return {(p.row, p.column) for p in report.problems}


@pytest.fixture
def league(sessions, clock, tmp_path):
    """The three clean ledgers imported; returns a session."""
    session = sessions()
    load(session, "organisations", write_csv(tmp_path / "orgs.csv", ORG_HEADER, ORG_ROWS), clock)
    load(session, "cadres", write_csv(tmp_path / "cadres.csv", CADRE_HEADER, CADRE_ROWS), clock)
    load(session, "youth", write_csv(tmp_path / "youth.csv", YOUTH_HEADER, YOUTH_ROWS), clock)
    yield session
    session.close()


# ------------------------------------------------------------------------------------ clean imports

def test_clean_csv_ledgers_import_organisations_cadres_and_youth(sessions, clock, tmp_path):
    with sessions() as session:
        orgs = load(session, "organisations", write_csv(tmp_path / "orgs.csv", ORG_HEADER, ORG_ROWS), clock)
        cadres = load(session, "cadres", write_csv(tmp_path / "cadres.csv", CADRE_HEADER, CADRE_ROWS), clock)
        youth = load(session, "youth", write_csv(tmp_path / "youth.csv", YOUTH_HEADER, YOUTH_ROWS), clock)
        for report, expected in ((orgs, 6), (cadres, 3), (youth, 3)):
            assert report.problems == [] and report.written
            assert (report.created, report.updated, report.unchanged) == (expected, 0, 0)

        branch, committee, county = (by_code(session, code)
                                     for code in ("qd-shinan-bdg-1", "qd-shinan-bdg", "qd-shinan"))
        assert (branch.kind, committee.kind, county.kind) == ("branch", "grassroots", "county")
        assert is_within(branch.path, committee.path) and is_within(committee.path, county.path)
        assert by_code(session, "yt").parent_id == by_code(session, "sd").id

        zhang = session.scalar(select(Cadre).where(Cadre.code == "c001"))
        assert (zhang.kind, zhang.organisation_id) == ("full_time", county.id)
        assert (zhang.guided_committee_id, zhang.guided_branch_id) == (committee.id, branch.id)
        assert zhang.user.username == "zhangwei" and zhang.user.password_hash is None
        assert zhang.user.display_name == "张伟" and zhang.user.organisation_id == county.id
        li = session.scalar(select(Cadre).where(Cadre.code == "c002"))
        assert li.user.username == "c002" and li.kind == "part_time"  # the account defaults to the cadre code

        assert sorted(session.scalars(select(Youth.phone))) == PHONES
        wang = session.scalar(select(Youth).where(Youth.phone == "13812345678"))
        assert (wang.occupation, wang.industry, wang.tags_complete) == ("学生", "教育", True)
        contacts = session.execute(select(Cadre.code, Contact.since).join(Contact, Contact.cadre_id == Cadre.id)
                                   .where(Contact.youth_id == wang.id).order_by(Cadre.code)).all()
        assert [code for code, _ in contacts] == ["c001", "c002"]
        assert all(since == clock.now() for _, since in contacts)
        assert counts(session)["Contact"] == 4


def test_a_parent_defined_later_in_the_file_is_created_first(sessions, clock, tmp_path):
    with sessions() as session:
        report = load(session, "organisations", write_csv(tmp_path / "orgs.csv", ORG_HEADER, ORG_ROWS[::-1]), clock)
        assert report.problems == [] and report.created == len(ORG_ROWS)
        assert is_within(by_code(session, "qd-shinan-bdg-1").path, by_code(session, "sd").path)


def test_check_roster_reports_what_an_import_would_do_and_writes_nothing(league, tmp_path):
    before = counts(league)
    rows = ORG_ROWS + [["lc", "聊城团市委", "团市委", "sd"]]
    report = check_roster(league, "organisations", read_roster_file(write_csv(tmp_path / "o.csv", ORG_HEADER, rows)))
    assert (report.created, report.updated, report.unchanged, report.written) == (1, 0, len(ORG_ROWS), False)
    league.commit()
    assert counts(league) == before


# -------------------------------------------------------------------------------------- bad rows

def test_bad_organisation_rows_are_reported_by_row_and_column_and_nothing_is_written(sessions, clock, tmp_path):
    rows = ORG_ROWS + [
        ["wf", "", "团市委", "sd"],                    # row 8: no name
        ["wh", "威海团市委", "市里的团委", "sd"],       # row 9: unknown kind
        ["x1", "某县团委", "county", "nowhere"],        # row 10: unknown parent
        ["x2", "某团支部", "团支部", "sd"],              # row 11: a branch cannot sit under a province
        ["qd", "青岛团市委（重复）", "团市委", "sd"],    # row 12: duplicate code
        ["sd2", "另一个团省委", "团省委", "sd"],         # row 13: a province has no parent
        ["x3", "某街道团工委", "基层团委", "x1"],        # row 14: its parent's row is bad
        ["x4", "某县团委", "县级团委", ""],              # row 15: a county needs a parent
    ]
    path = write_csv(tmp_path / "orgs.csv", ORG_HEADER, rows)
    with sessions() as session:
        before = counts(session)
        report = load(session, "organisations", path, clock)
        assert not report.written
        assert located(report) == {(8, "组织名称"), (9, "组织类型"), (10, "上级组织编码"), (11, "上级组织编码"),
                                   (12, "组织编码"), (13, "上级组织编码"), (14, "上级组织编码"), (15, "上级组织编码")}
        reasons = {p.row: p.reason for p in report.problems}
        assert "必填" in reasons[8] and "required" in reasons[8]
        assert "未知的组织类型" in reasons[9] and "unknown kind" in reasons[9]
        assert "nowhere" in reasons[10] and "不存在" in reasons[10]
        assert "团支部不能隶属于团省委" in reasons[11] and "cannot sit under a province" in reasons[11]
        assert "第3行" in reasons[12] and "repeats row 3" in reasons[12]
        assert "no parent" in reasons[13]
        assert "第10行" in reasons[14] and "has errors" in reasons[14]
        assert "needs a parent" in reasons[15]
        assert str(report.problems[0]).startswith("第8行 组织名称: ")
        assert (report.created, report.bad_rows) == (len(ORG_ROWS), 8)  # what the good rows would do
        assert counts(session) == before


def test_parent_cycles_in_a_file_are_refused(sessions, clock, tmp_path):
    rows = [["sd", "山东团省委", "团省委", ""],
            ["a", "甲", "基层团委", "b"], ["b", "乙", "团总支", "a"],   # a cycle of two
            ["c", "丙", "团支部", "c"],                                   # its own parent
            ["d", "丁", "团支部", "a"]]                                   # under the cycle
    with sessions() as session:
        report = load(session, "organisations", write_csv(tmp_path / "o.csv", ORG_HEADER, rows), clock,
                      accept_good_rows=True)
        reasons = {p.row: p.reason for p in report.problems}
        assert "cycle" in reasons[3] and "cycle" in reasons[4]
        assert "its own parent" in reasons[5]
        assert "has errors" in reasons[6]
        assert report.created == 1 and counts(session)["Organisation"] == 1


def test_moving_or_retyping_an_existing_organisation_is_refused(league, clock, tmp_path):
    before = counts(league)
    rows = [["qd-shinan", "市南区团委", "县级团委", "yt"],       # a move to another city
            ["qd-shinan-bdg", "八大关街道团工委", "团总支", "qd-shinan"]]  # a new kind
    report = load(league, "organisations", write_csv(tmp_path / "o.csv", ORG_HEADER, rows), clock)
    reasons = {(p.row, p.column): p.reason for p in report.problems}
    assert "cannot move" in reasons[(2, "上级组织编码")] and "qd" in reasons[(2, "上级组织编码")]
    assert "cannot change an organisation's kind" in reasons[(3, "组织类型")]
    assert counts(league) == before
    assert by_code(league, "qd-shinan").parent_id == by_code(league, "qd").id


def test_accept_good_rows_writes_only_the_good_rows(sessions, clock, tmp_path):
    rows = ORG_ROWS + [["x2", "某团支部", "团支部", "sd"], ["x3", "某团支部", "团支部", "x2"],
                       ["lc", "聊城团市委", "团市委", "sd"]]
    with sessions() as session:
        report = load(session, "organisations", write_csv(tmp_path / "o.csv", ORG_HEADER, rows), clock,
                      accept_good_rows=True)
        assert report.written and located(report) == {(8, "上级组织编码"), (9, "上级组织编码")}
        assert report.created == len(ORG_ROWS) + 1
        codes = set(session.scalars(select(Organisation.code)))
        assert codes == {row[0] for row in ORG_ROWS} | {"lc"}

        youth_rows = [["好", "13700000001", "", "", ""], ["坏", "12345", "", "", ""], ["也好", "13700000002", "", "", ""]]
        youth = load(session, "youth", write_csv(tmp_path / "y.csv", YOUTH_HEADER, youth_rows), clock,
                     accept_good_rows=True)
        assert located(youth) == {(3, "手机号")} and youth.created == 2
        assert sorted(session.scalars(select(Youth.phone))) == ["13700000001", "13700000002"]


def test_cadre_rows_are_checked_against_the_tree_and_the_accounts(league, clock, tmp_path):
    league.add(User(username="taken", display_name="管理员", active=True, session_version=1, created_at=clock.now()))
    league.commit()
    before = counts(league)
    rows = [
        ["c101", "甲", "专职", "nowhere", "", "", ""],                       # 2: unknown organisation
        ["c102", "乙", "临时", "qd", "", "", ""],                            # 3: unknown kind
        ["c103", "丙", "专职", "qd", "", "qd-shinan", ""],                   # 4: a county is not a grassroots committee
        ["c104", "丁", "专职", "qd", "", "", "qd-shinan-bdg-1"],             # 5: branch without its committee
        ["c105", "戊", "专职", "qd", "", "qd-shinan-bdg", "qd-shinan-bdg"],  # 6: a committee is not a branch
        ["c106", "己", "专职", "qd", "taken", "", ""],                       # 7: username of another account
        ["c107", "庚", "专职", "qd", "same", "", ""],
        ["c108", "辛", "专职", "qd", "same", "", ""],                        # 9: username repeats row 8
        ["c001", "张伟", "专职", "qd-shinan", "zhang2", "", ""],             # 10: renaming the account
        ["c002", "李娜", "兼职", "qd", "c001", "", ""],                      # 11: c002's account is c002
    ]
    report = load(league, "cadres", write_csv(tmp_path / "c.csv", CADRE_HEADER, rows), clock)
    assert located(report) == {(2, "所在组织编码"), (3, "类型"), (4, "联系指导的基层团委编码"), (5, "全程参与的团支部编码"),
                               (6, "全程参与的团支部编码"), (7, "账号"), (9, "账号"), (10, "账号"), (11, "账号")}
    reasons = {p.row: p.reason for p in report.problems}
    assert "already taken" in reasons[7] and "repeats row 8" in reasons[9]
    assert "cannot change a username" in reasons[10] and "c002" in reasons[11]
    assert counts(league) == before


def test_a_branch_outside_the_guided_committee_is_refused(league, clock, tmp_path):
    extra = [["yt-jd", "烟台某街道团工委", "基层团委", "yt"]]
    load(league, "organisations", write_csv(tmp_path / "o.csv", ORG_HEADER, extra), clock)
    rows = [["c201", "癸", "兼职", "yt", "", "yt-jd", "qd-shinan-bdg-1"]]
    report = load(league, "cadres", write_csv(tmp_path / "c.csv", CADRE_HEADER, rows), clock)
    assert located(report) == {(2, "全程参与的团支部编码")} and "not inside yt-jd" in report.problems[0].reason


def test_youth_rows_list_cadres_with_any_separator_and_unknown_codes_are_refused(league, clock, tmp_path):
    rows = [["甲", "13600000001", "", "", "c001;c002，c003"], ["乙", "13600000002", "", "", "c001、c002；c003,c003"],
            ["丙", "13600000003", "", "", "c001;c404;c405"]]
    report = load(league, "youth", write_csv(tmp_path / "y.csv", YOUTH_HEADER, rows), clock, accept_good_rows=True)
    assert located(report) == {(4, "联系团干部工号")}
    assert "c404" in report.problems[0].reason and "c405" in report.problems[0].reason
    for phone in ("13600000001", "13600000002"):
        youth_id = league.scalar(select(Youth.id).where(Youth.phone == phone))
        assert league.scalar(select(func.count()).select_from(Contact).where(Contact.youth_id == youth_id)) == 3


def test_a_missing_required_column_is_reported_on_the_header_row(sessions, clock, tmp_path):
    path = write_csv(tmp_path / "y.csv", ["姓名", "职业"], [["小王", "学生"]])
    with sessions() as session:
        report = load(session, "youth", path, clock)
        assert located(report) == {(1, "手机号")} and "missing column" in report.problems[0].reason
        assert not report.written and counts(session)["Youth"] == 0


def test_unsupported_or_broken_files_are_refused_with_a_clear_message(tmp_path):
    for name in ("orgs.xls", "orgs.txt", "orgs"):
        (tmp_path / name).write_bytes(b"whatever")
        with pytest.raises(RosterFileError, match=r"\.xlsx 或 \.csv"):
            read_roster_file(tmp_path / name)
    (tmp_path / "broken.xlsx").write_bytes(b"not a zip file")
    with pytest.raises(RosterFileError, match="not a readable .xlsx"):
        read_roster_file(tmp_path / "broken.xlsx")
    with pytest.raises(RosterFileError, match="no such file"):
        read_roster_file(tmp_path / "missing.csv")


# --------------------------------------------------------------------------------------- re-import

def test_reimporting_the_same_files_changes_nothing(league, clock, tmp_path):
    before = counts(league)
    clock.advance(timedelta(days=3))
    for kind, header, rows in (("organisations", ORG_HEADER, ORG_ROWS), ("cadres", CADRE_HEADER, CADRE_ROWS),
                               ("youth", YOUTH_HEADER, YOUTH_ROWS)):
        report = load(league, kind, write_csv(tmp_path / f"{kind}.csv", header, rows), clock)
        assert report.problems == [] and (report.created, report.updated) == (0, 0)
        assert report.unchanged == len(rows)
    assert counts(league) == before


def test_changed_names_and_tags_are_updates(league, clock, tmp_path):
    orgs = [row[:] for row in ORG_ROWS]
    orgs[1][1] = "共青团青岛市委员会"
    cadres = [row[:] for row in CADRE_ROWS]
    cadres[1][1], cadres[1][3] = "李娜娜", "qd-shinan"   # renamed and transferred
    youth = [["小李", "13912345678", "医生", "医疗", "c002"]]  # tags added, one more cadre
    assert load(league, "organisations", write_csv(tmp_path / "o.csv", ORG_HEADER, orgs), clock).updated == 1
    report = load(league, "cadres", write_csv(tmp_path / "c.csv", CADRE_HEADER, cadres), clock)
    assert (report.updated, report.unchanged) == (1, 2)
    report = load(league, "youth", write_csv(tmp_path / "y.csv", YOUTH_HEADER, youth), clock)
    assert (report.created, report.updated) == (0, 1)

    assert by_code(league, "qd").name == "共青团青岛市委员会"
    li = league.scalar(select(Cadre).where(Cadre.code == "c002"))
    league.refresh(li.user)
    assert (li.name, li.user.display_name, li.user.username) == ("李娜娜", "李娜娜", "c002")
    assert li.organisation_id == li.user.organisation_id == by_code(league, "qd-shinan").id
    xiaoli = league.scalar(select(Youth).where(Youth.phone == "13912345678"))
    assert (xiaoli.occupation, xiaoli.industry) == ("医生", "医疗")
    assert league.scalar(select(func.count()).select_from(Contact).where(Contact.youth_id == xiaoli.id)) == 2


def test_empty_cells_never_erase_what_the_system_holds(league, clock, tmp_path):
    cadres = [["c001", "张伟", "专职", "qd-shinan", "", "", ""]]
    youth = [["小王", "13812345678", "", "", ""]]
    assert load(league, "cadres", write_csv(tmp_path / "c.csv", CADRE_HEADER, cadres), clock).unchanged == 1
    assert load(league, "youth", write_csv(tmp_path / "y.csv", YOUTH_HEADER, youth), clock).unchanged == 1
    zhang = league.scalar(select(Cadre).where(Cadre.code == "c001"))
    assert zhang.guided_branch_id == by_code(league, "qd-shinan-bdg-1").id and zhang.user.username == "zhangwei"
    wang = league.scalar(select(Youth).where(Youth.phone == "13812345678"))
    assert (wang.occupation, wang.industry) == ("学生", "教育")
    assert league.scalar(select(func.count()).select_from(Contact).where(Contact.youth_id == wang.id)) == 2


# ----------------------------------------------------------------------------- formats and headers

def test_xlsx_ledgers_import_with_numbers_and_blank_rows(sessions, clock, tmp_path):
    orgs = write_xlsx(tmp_path / "orgs.xlsx", ORG_HEADER, ORG_ROWS)
    cadres = write_xlsx(tmp_path / "cadres.xlsx", CADRE_HEADER,
                        [[*row[:4], row[4] or None, *row[5:]] for row in CADRE_ROWS])
    # Excel keeps a typed-in phone as a number; a blank row in the middle keeps its place in the numbering.
    youth = write_xlsx(tmp_path / "youth.xlsx", YOUTH_HEADER,
                       [["小王", 13812345678, "学生", "教育", "c001"], [None] * 5, ["小李", 139123456789.0, None, None, "c002"],
                        ["小赵", 15012345678.0, None, None, None]])
    with sessions() as session:
        assert load(session, "organisations", orgs, clock).created == len(ORG_ROWS)
        assert load(session, "cadres", cadres, clock).created == len(CADRE_ROWS)
        report = load(session, "youth", youth, clock, accept_good_rows=True)
        assert located(report) == {(4, "手机号")}  # row 3 is blank; row 4 has twelve digits
        assert sorted(session.scalars(select(Youth.phone))) == ["13812345678", "15012345678"]


@pytest.mark.parametrize("english", [False, True], ids=["chinese-headers", "english-headers"])
def test_chinese_and_english_headers_are_both_accepted(sessions, clock, tmp_path, english):
    def header(kind: str) -> list[str]:
        return [column.field if english else column.header for column in COLUMNS[kind]]
    with sessions() as session:
        for kind, rows in (("organisations", ORG_ROWS), ("cadres", CADRE_ROWS), ("youth", YOUTH_ROWS)):
            report = load(session, kind, write_csv(tmp_path / f"{kind}.csv", header(kind), rows), clock)
            assert report.problems == [] and report.created == len(rows)
        assert counts(session) == {"Organisation": 6, "User": 3, "Cadre": 3, "Youth": 3, "Contact": 4}


def test_english_headers_may_differ_in_case_and_spacing_and_extra_columns_are_ignored(sessions, clock, tmp_path):
    header = ["序号", "Code", "NAME", "Kind", "Parent Code", "备注"]
    rows = [[i, *row, "note"] for i, row in enumerate(ORG_ROWS, start=1)]
    with sessions() as session:
        assert load(session, "organisations", write_csv(tmp_path / "o.csv", header, rows), clock).created == 6


def test_gb18030_csv_from_chinese_excel_imports(sessions, clock, tmp_path):
    with sessions() as session:
        for kind, header, rows in (("organisations", ORG_HEADER, ORG_ROWS), ("cadres", CADRE_HEADER, CADRE_ROWS),
                                   ("youth", YOUTH_HEADER, YOUTH_ROWS)):
            path = write_csv(tmp_path / f"{kind}.csv", header, rows, encoding="gb18030")
            with pytest.raises(UnicodeDecodeError):
                path.read_bytes().decode("utf-8")
            assert load(session, kind, path, clock).created == len(rows)
        assert by_code(session, "qd-shinan-bdg").name == "八大关街道团工委"
        assert session.scalar(select(Youth.name).where(Youth.phone == "13812345678")) == "小王"


def test_utf8_csv_without_bom_imports(sessions, clock, tmp_path):
    path = write_csv(tmp_path / "o.csv", ORG_HEADER, ORG_ROWS, encoding="utf-8")
    with sessions() as session:
        assert load(session, "organisations", path, clock).created == len(ORG_ROWS)


# ------------------------------------------------------------------------------------------- export

def test_export_then_import_reports_everything_unchanged(league, clock, tmp_path):
    before = counts(league)
    for kind in LEDGERS:
        path = tmp_path / f"{kind}.xlsx"
        path.write_bytes(export_roster(league, kind))
        sheet = read_roster_file(path)
        assert sheet.header == [column.header for column in COLUMNS[kind]]
        report = load(league, kind, path, clock)
        assert report.problems == [] and (report.created, report.updated) == (0, 0)
        assert report.unchanged == before[{"organisations": "Organisation", "cadres": "Cadre", "youth": "Youth"}[kind]]
    assert counts(league) == before


def test_export_carries_full_phones_as_text_and_chinese_kinds(league, tmp_path):
    path = tmp_path / "youth.xlsx"
    path.write_bytes(export_roster(league, "youth"))
    sheet = load_workbook(path).worksheets[0]
    assert sheet.title == "青年"
    phones = [row[1] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert sorted(phones) == PHONES  # in full, and as text, not numbers
    path.write_bytes(export_roster(league, "cadres"))
    kinds = [row[2] for row in load_workbook(path).worksheets[0].iter_rows(min_row=2, values_only=True)]
    assert sorted(kinds) == sorted(["专职", "兼职", "挂职"])


def test_export_of_a_subtree_holds_only_that_subtree(league, tmp_path):
    def exported(kind: str) -> list[list[str]]:
        path = tmp_path / f"{kind}.xlsx"
        path.write_bytes(export_roster(league, kind, root_org=by_code(league, "qd")))
        return [cells for _, cells in read_roster_file(path).rows]
    assert [row[0] for row in exported("organisations")] == ["qd", "qd-shinan", "qd-shinan-bdg", "qd-shinan-bdg-1"]
    assert sorted(row[0] for row in exported("cadres")) == ["c001", "c002"]
    youth = {row[1]: row[4] for row in exported("youth")}
    assert youth == {"13812345678": "c001;c002", "13912345678": "c001"}  # 小赵 is contacted only in 烟台


def test_a_name_that_looks_like_a_formula_is_exported_as_text(league, clock, tmp_path):
    rows = [["=HYPERLINK(\"http://x\")", "13700000009", "", "", ""]]
    assert load(league, "youth", write_csv(tmp_path / "y.csv", YOUTH_HEADER, rows), clock).created == 1
    path = tmp_path / "youth.xlsx"
    path.write_bytes(export_roster(league, "youth"))
    cells = [row for row in load_workbook(path).worksheets[0].iter_rows(min_row=2) if row[1].value == "13700000009"]
    assert cells[0][0].data_type == "s"


# ------------------------------------------------------------------------------------ personal data

def test_phone_numbers_never_appear_in_messages_or_logs(league, clock, tmp_path, caplog):
    rows = [["甲", "13912345678", "", "", "c404"],     # 2: existing youth, unknown cadre
            ["乙", "138 1234 5678", "", "", ""],       # 3: new spelling of 小王's phone: fine
            ["丙", "+86 138-1234-5678", "", "", ""],   # 4: the same phone again
            ["丁", "1381234567", "", "", ""],          # 5: ten digits
            ["戊", "23812345678", "", "", ""]]         # 6: not a mobile number
    with caplog.at_level(logging.DEBUG):
        report = load(league, "youth", write_csv(tmp_path / "y.csv", YOUTH_HEADER, rows), clock)
    assert located(report) == {(2, "联系团干部工号"), (4, "手机号"), (5, "手机号"), (6, "手机号")}
    assert "138****5678" in {p.row: p.reason for p in report.problems}[4]
    text = "\n".join(str(p) for p in report.problems) + caplog.text
    for full in ("13912345678", "13812345678", "1381234567", "23812345678", "138 1234 5678", "138-1234-5678"):
        assert full not in text


# ------------------------------------------------------------------------------------ round trips

def test_loading_is_one_query_per_thousand_keys_not_one_per_row(league, tmp_path):
    rows = [[f"青年{i}", f"137{i:08d}", "学生", "教育", "c001;c002"] for i in range(2500)]
    sheet = read_roster_file(write_csv(tmp_path / "y.csv", YOUTH_HEADER, rows))
    statements: list[str] = []
    bind = league.get_bind()

    def count_statement(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)
    event.listen(bind, "before_cursor_execute", count_statement)
    try:
        report = check_roster(league, "youth", sheet)
    finally:
        event.remove(bind, "before_cursor_execute", count_statement)
    assert report.problems == [] and report.created == 2500
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) <= 1 + 3 + 0 + 1  # cadres, youth by phone (3 chunks), no contacts yet, slack of one
