"""The admin's roster page (/admin/roster): upload, the row-by-row dry run, confirm, refusals, limits, rights."""
from __future__ import annotations

import csv
import io
import re

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from tests.workflows.test_roster import write_xlsx
from web.extensions import db
from workflows.models import Cadre, Contact, Organisation, User, Youth
from workflows.organisations import by_code
from workflows.roles import grant_role
from workflows.roster import COLUMNS, import_roster, sheet_from_dicts

from .conftest import csrf_token
from .wish_journeys import staff_client

ORG_HEADER = ["组织编码", "组织名称", "组织类型", "上级组织编码"]
ORG_ROWS = [
    ["qd", "青岛团市委", "团市委", "prov"],            # row 2: as it is
    ["qd-sn", "市南区团委（新）", "县级团委", "qd"],     # row 3: renamed
    ["qd-sb", "市北区团委", "县级团委", "qd"],          # row 4: new
    ["qd-x", "某团委", "市里的团委", "qd"],             # row 5: unknown kind
]
CADRE_HEADER = ["工号", "姓名", "类型", "所在组织编码"]
YOUTH_HEADER = ["姓名", "手机号", "职业", "行业", "联系团干部工号"]


@pytest.fixture
def admin(app, league, tmp_path):
    """The test league; checked files wait in a directory of this test.  Returns P_admin's client."""
    app.config["ROSTER_UPLOAD_DIR"] = str(tmp_path / "uploads")
    return staff_client(app, "P_admin")


def csv_bytes(header: list[str], rows: list[list], encoding: str = "utf-8-sig") -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


def upload(client, ledger: str, content: bytes, filename: str = "ledger.csv", token: bool = True):
    data = {"ledger": ledger, "file": (io.BytesIO(content), filename)}
    if token:
        data["csrf_token"] = csrf_token(client, "/admin/roster")
    return client.post("/admin/roster/check", data=data, content_type="multipart/form-data")


def apply(client, upload_id: str, good_rows: bool = False):
    data = {"upload": upload_id, "csrf_token": csrf_token(client, "/admin/roster")}
    if good_rows:
        data["good_rows"] = "1"
    return client.post("/admin/roster/apply", data=data)


def upload_id(html: str) -> str:
    return re.search(r'name="upload" value="([0-9a-f]{32})"', html).group(1)


def outcomes(html: str) -> dict[int, tuple[str, str]]:
    """Row number → (outcome word, reasons) as the report lists them."""
    found = {}
    for number, body in re.findall(r'<tr class="\w+" id="row-(\d+)">(.*?)</tr>', html, re.S):
        word = re.search(r'<span class="badge \w+">([^<]+)</span>', body).group(1)
        reasons = " ".join(re.findall(r"<li>(.*?)</li>", body, re.S))
        found[int(number)] = (word, reasons)
    return found


def org_state(app) -> dict[str, str]:
    with app.app_context():
        return dict(db.session.execute(select(Organisation.code, Organisation.name)).all())


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def staged_files(tmp_path) -> list[str]:
    directory = tmp_path / "uploads"
    return sorted(path.name for path in directory.iterdir()) if directory.exists() else []


def test_the_dry_run_reports_each_row_and_writes_nothing(app, admin, tmp_path):
    before = org_state(app)
    response = upload(admin, "organisations", csv_bytes(ORG_HEADER, ORG_ROWS), "组织名册.csv")
    html = response.get_data(as_text=True)
    assert response.status_code == 422  # a row was refused
    assert "名册预检：组织名册「组织名册.csv」" in html and "尚未写入任何数据" in html
    rows = outcomes(html)
    assert [rows[n][0] for n in (2, 3, 4, 5)] == ["不变", "更新", "新增", "拒绝"]
    assert "组织类型：未知的组织类型「市里的团委」" in rows[5][1] and "/" not in rows[5][1]  # the Chinese half
    assert re.search(r'id="count-create">.*?<span class="value">1</span>', html, re.S)
    assert re.search(r'id="count-refused">.*?<span class="value">1</span>', html, re.S)
    assert "整份文件都不会导入" in html and 'id="roster-apply-good"' in html and 'id="roster-apply"' not in html
    assert org_state(app) == before  # nothing written
    assert len(staged_files(tmp_path)) == 2  # the file and its meta wait for the confirmation


def test_applying_the_good_rows_writes_what_the_report_said(app, admin, tmp_path):
    staged = upload_id(upload(admin, "organisations", csv_bytes(ORG_HEADER, ORG_ROWS)).get_data(as_text=True))
    response = apply(admin, staged)
    assert response.status_code == 422  # all or nothing by default: the refused row stops the file
    assert org_state(app)["qd-sn"] == "市南区团委" and "qd-sb" not in org_state(app)
    response = apply(admin, staged, good_rows=True)
    assert response.status_code == 302 and response.headers["Location"] == "/admin/roster"
    state = org_state(app)
    assert state["qd-sn"] == "市南区团委（新）" and state["qd-sb"] == "市北区团委" and "qd-x" not in state
    html = admin.get("/admin/roster").get_data(as_text=True)
    assert "已导入组织名册「ledger.csv」：新增 1 行，更新 1 行，未变 1 行，有误未导入 1 行。" in html
    assert staged_files(tmp_path) == []
    assert apply(admin, staged, good_rows=True).status_code == 404  # used up: nothing happens twice


def test_a_clean_file_is_confirmed_and_applied(app, admin, clock):
    rows = [["c-new", "新干部", "专职", "qd-sn"]]
    html = upload(admin, "cadres", csv_bytes(CADRE_HEADER, rows)).get_data(as_text=True)
    assert outcomes(html) == {2: ("新增", "")} and 'id="roster-apply"' in html
    assert "确认导入（新增 1 行，更新 0 行）" in html and count(app, Cadre) == 3
    assert apply(admin, upload_id(html)).status_code == 302
    assert count(app, Cadre) == 4
    youth = [["小新", "13911112222", "学生", "教育", "c-new；c-zhang"], ["小红", "13800000002", "", "制造业", ""]]
    html = upload(admin, "youth", csv_bytes(YOUTH_HEADER, youth)).get_data(as_text=True)
    assert outcomes(html) == {2: ("新增", ""), 3: ("更新", "")}
    assert "小新 139****2222" in html and "13911112222" not in html  # phones masked in the report
    assert apply(admin, upload_id(html)).status_code == 302
    with app.app_context():
        assert db.session.scalar(select(Youth.industry).where(Youth.phone == "13800000002")) == "制造业"
    assert count(app, Contact) == 4
    html = upload(admin, "youth", csv_bytes(YOUTH_HEADER, youth)).get_data(as_text=True)  # again: nothing to do
    assert outcomes(html) == {2: ("不变", ""), 3: ("不变", "")} and 'id="roster-nothing"' in html
    assert 'id="roster-apply"' not in html


def test_a_change_after_the_dry_run_is_shown_again_before_anything_is_written(app, admin, clock):
    rows = [["c-new", "新干部", "专职", "qd-sn"]]
    html = upload(admin, "cadres", csv_bytes(CADRE_HEADER, rows)).get_data(as_text=True)
    with app.app_context():  # meanwhile someone imports the same cadre under another name
        import_roster(db.session, "cadres", sheet_from_dicts([{"工号": "c-new", "姓名": "别人", "类型": "兼职",
                                                              "所在组织编码": "qd-sn"}]), clock.now())
        db.session.commit()
    response = apply(admin, upload_id(html))
    again = response.get_data(as_text=True)
    assert response.status_code == 409 and 'id="roster-changed"' in again
    assert outcomes(again) == {2: ("更新", "")}
    with app.app_context():
        assert db.session.scalar(select(Cadre.name).where(Cadre.code == "c-new")) == "别人"  # not written yet
    assert apply(admin, upload_id(again)).status_code == 302  # confirmed the new report: written
    with app.app_context():
        assert db.session.scalar(select(Cadre.name).where(Cadre.code == "c-new")) == "新干部"


@pytest.mark.parametrize("content, filename, message", [
    (b"name,phone\n", "ledger.txt", "不支持的文件类型「.txt」"),
    (b"PK\x03\x04 not really a workbook", "ledger.xlsx", "不是有效的 .xlsx 文件"),
    (b"", "ledger.csv", "上传的文件是空的"),
])
def test_a_bad_file_gets_a_message_and_writes_nothing(app, admin, tmp_path, content, filename, message):
    before = org_state(app)
    response = upload(admin, "organisations", content, filename)
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'id="roster-error"' in html and message in html, html[:3000]
    assert "未写入任何数据" in html and org_state(app) == before and staged_files(tmp_path) == []


def test_a_missing_choice_or_file_is_asked_for(app, admin):
    token = csrf_token(admin, "/admin/roster")
    response = admin.post("/admin/roster/check", data={"csrf_token": token, "ledger": "organisations"},
                          content_type="multipart/form-data")
    assert response.status_code == 422 and "请选择要上传的名册文件" in response.get_data(as_text=True)
    response = upload(admin, "people", csv_bytes(ORG_HEADER, ORG_ROWS))
    assert response.status_code == 422 and "请选择名册类型" in response.get_data(as_text=True)


def test_a_wrong_header_is_reported_and_cannot_be_applied(app, admin):
    html = upload(admin, "organisations", csv_bytes(["编码", "名称"], [["qd-y", "某团委"]])).get_data(as_text=True)
    assert 'id="header-problems"' in html and "组织编码" in html and "缺少此列" in html
    assert 'id="roster-apply' not in html
    assert apply(admin, upload_id(html), good_rows=True).status_code == 422
    assert "qd-y" not in org_state(app)


def test_size_and_row_limits_are_explained(app, admin, tmp_path):
    before = org_state(app)
    app.config["ROSTER_MAX_ROWS"] = 3
    response = upload(admin, "organisations", csv_bytes(ORG_HEADER, ORG_ROWS))
    assert response.status_code == 422 and "文件超过 3 行数据，请分成几个文件导入" in response.get_data(as_text=True)
    app.config["ROSTER_MAX_FILE_BYTES"] = 100
    response = upload(admin, "organisations", csv_bytes(ORG_HEADER, ORG_ROWS))
    assert response.status_code == 413 and "名册文件不超过 100 字节" in response.get_data(as_text=True)
    app.config["MAX_CONTENT_LENGTH"] = 2000  # past the whole request's limit: the same page and words
    response = upload(admin, "organisations", b"x" * 5000)
    html = response.get_data(as_text=True)
    assert response.status_code == 413 and 'id="roster-error"' in html and "请拆分成几个文件" in html
    assert org_state(app) == before and staged_files(tmp_path) == []


def test_an_xlsx_export_imports_again_unchanged(app, admin):
    response = admin.get("/admin/roster/export/cadres.xlsx")
    assert response.status_code == 200 and response.mimetype.endswith("spreadsheetml.sheet")
    assert "no-store" in response.headers["Cache-Control"]
    html = upload(admin, "cadres", response.data, "cadres.xlsx").get_data(as_text=True)
    assert {word for word, _reasons in outcomes(html).values()} == {"不变"} and len(outcomes(html)) == 3
    sheet = load_workbook(io.BytesIO(admin.get("/admin/roster/export/cadres.xlsx?org=jn").data)).active
    assert [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)] == ["c-wang"]


def test_templates_and_export_limits(app, admin, tmp_path):
    for ledger in ("organisations", "cadres", "youth"):
        response = admin.get(f"/admin/roster/template/{ledger}.xlsx")
        rows = list(load_workbook(io.BytesIO(response.data)).active.iter_rows(values_only=True))
        assert rows == [tuple(column.header for column in COLUMNS[ledger])]
    # A filled template is read like any ledger (XLSX).
    path = write_xlsx(tmp_path / "orgs.xlsx", ORG_HEADER, [["qd-sb", "市北区团委", "县级团委", "qd"]])
    html = upload(admin, "organisations", path.read_bytes(), "orgs.xlsx").get_data(as_text=True)
    assert outcomes(html) == {2: ("新增", "")}
    app.config["ROSTER_MAX_EXPORT_ROWS"] = 2
    response = admin.get("/admin/roster/export/organisations.xlsx")
    assert response.status_code == 422 and "超过 2 行" in response.get_data(as_text=True)
    assert admin.get("/admin/roster/export/organisations.xlsx?org=jn").status_code == 200  # 2 rows: jn, jn-lx
    assert admin.get("/admin/roster/export/people.xlsx").status_code == 404
    assert admin.get("/admin/roster/template/people.xlsx").status_code == 404
    assert admin.get("/admin/roster/export/youth.xlsx?org=nowhere").status_code == 404


def test_discarding_removes_the_checked_file(app, admin, tmp_path):
    html = upload(admin, "organisations", csv_bytes(ORG_HEADER, ORG_ROWS[:1])).get_data(as_text=True)
    response = admin.post("/admin/roster/discard", data={"upload": upload_id(html),
                                                         "csrf_token": csrf_token(admin, "/admin/roster")})
    assert response.status_code == 302 and staged_files(tmp_path) == []
    assert "已放弃导入" in admin.get("/admin/roster").get_data(as_text=True)
    assert apply(admin, upload_id(html)).status_code == 404


def test_only_an_admin_of_the_top_organisation_and_only_with_the_token(app, admin, clock):
    html = upload(admin, "organisations", csv_bytes(ORG_HEADER, ORG_ROWS[1:3])).get_data(as_text=True)
    staged = upload_id(html)
    assert "名册导入" in admin.get("/").get_data(as_text=True)  # in the admin's menu
    assert upload(admin, "organisations", csv_bytes(ORG_HEADER, ORG_ROWS), token=False).status_code == 400
    assert admin.post("/admin/roster/apply", data={"upload": staged}).status_code == 400
    with app.app_context():  # a city admin is still not a province admin
        grant_role(db.session, _user(db.session, "zhang"), "admin", by_code(db.session, "qd"))
        db.session.commit()
    for username in ("zhang", "S_org", "Q_org", "P_org"):
        client = staff_client(app, username)
        assert "名册导入" not in client.get("/").get_data(as_text=True)
        assert client.get("/admin/roster").status_code == 403
        assert client.get("/admin/roster/export/youth.xlsx").status_code == 403
        token = csrf_token(client, "/")
        assert client.post("/admin/roster/apply", data={"upload": staged, "csrf_token": token}).status_code == 403
        data = {"ledger": "organisations", "file": (io.BytesIO(csv_bytes(ORG_HEADER, ORG_ROWS)), "o.csv"),
                "csrf_token": token}
        assert client.post("/admin/roster/check", data=data, content_type="multipart/form-data").status_code == 403
    anonymous = app.test_client().get("/admin/roster")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    with app.app_context():  # another province admin may not confirm this admin's upload
        grant_role(db.session, _user(db.session, "P_org"), "admin", by_code(db.session, "prov"))
        db.session.commit()
    assert apply(staff_client(app, "P_org"), staged).status_code == 404
    assert org_state(app)["qd-sn"] == "市南区团委"
    assert apply(admin, staged).status_code == 302 and org_state(app)["qd-sn"] == "市南区团委（新）"


def _user(session, username: str) -> User:
    return session.scalar(select(User).where(User.username == username))
