"""``flask roster import`` and ``flask roster export``, through the app's CLI runner on both databases."""
from __future__ import annotations

from sqlalchemy import func, select

from tests.workflows.test_roster import (CADRE_HEADER, CADRE_ROWS, ORG_HEADER, ORG_ROWS, YOUTH_HEADER, YOUTH_ROWS,
                                         write_csv)
from web.extensions import db
from workflows.models import Cadre, Contact, Organisation, User, Youth


def run(runner, *args: str):
    """Run one ``flask roster`` command; return the result."""
    return runner.invoke(args=["roster", *map(str, args)])


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def import_clean_ledgers(runner, tmp_path) -> None:
    for kind, header, rows in (("organisations", ORG_HEADER, ORG_ROWS), ("cadres", CADRE_HEADER, CADRE_ROWS),
                               ("youth", YOUTH_HEADER, YOUTH_ROWS)):
        result = run(runner, "import", kind, write_csv(tmp_path / f"{kind}.csv", header, rows))
        assert result.exit_code == 0, result.output


def test_import_prints_the_counts_and_writes(app, runner, tmp_path):
    result = run(runner, "import", "organisations", write_csv(tmp_path / "o.csv", ORG_HEADER, ORG_ROWS))
    assert result.exit_code == 0, result.output
    assert f"新增 {len(ORG_ROWS)} / created" in result.output and "有误 0 行" in result.output
    assert count(app, Organisation) == len(ORG_ROWS)
    result = run(runner, "import", "组织", tmp_path / "o.csv")  # the Chinese ledger name, and again: unchanged
    assert result.exit_code == 0 and f"未变 {len(ORG_ROWS)} / unchanged" in result.output


def test_import_with_bad_rows_prints_each_row_writes_nothing_and_exits_1(app, runner, tmp_path):
    rows = ORG_ROWS + [["wf", "", "团市委", "sd"], ["x2", "某团支部", "团支部", "nowhere"]]
    result = run(runner, "import", "organisations", write_csv(tmp_path / "o.csv", ORG_HEADER, rows))
    assert result.exit_code == 1
    assert "第8行 组织名称: 必填 / required" in result.output
    assert "第9行 上级组织编码: " in result.output and "nowhere" in result.output
    assert "nothing was written" in result.output
    assert count(app, Organisation) == 0


def test_good_rows_option_writes_the_good_rows(app, runner, tmp_path):
    rows = ORG_ROWS + [["wf", "", "团市委", "sd"]]
    result = run(runner, "import", "organisations", write_csv(tmp_path / "o.csv", ORG_HEADER, rows), "--good-rows")
    assert result.exit_code == 0, result.output
    assert "第8行 组织名称" in result.output and "有误 1 行" in result.output
    assert count(app, Organisation) == len(ORG_ROWS)


def test_cadres_and_youth_import_through_the_cli(app, runner, tmp_path, clock):
    import_clean_ledgers(runner, tmp_path)
    assert (count(app, User), count(app, Cadre), count(app, Youth), count(app, Contact)) == (3, 3, 3, 4)
    with app.app_context():
        assert set(db.session.scalars(select(Contact.since))) == {clock.now()}


def test_phone_numbers_stay_masked_in_the_output(app, runner, tmp_path):
    import_clean_ledgers(runner, tmp_path)
    rows = [["甲", "13700000001", "", "", ""], ["乙", "+86 137 0000 0001", "", "", ""]]
    result = run(runner, "import", "youth", write_csv(tmp_path / "y.csv", YOUTH_HEADER, rows))
    assert result.exit_code == 1
    assert "137****0001" in result.output and "13700000001" not in result.output


def test_export_then_import_is_unchanged(app, runner, tmp_path):
    import_clean_ledgers(runner, tmp_path)
    for kind, total in (("organisations", len(ORG_ROWS)), ("cadres", len(CADRE_ROWS)), ("youth", len(YOUTH_ROWS))):
        path = tmp_path / f"{kind}.xlsx"
        result = run(runner, "export", kind, path)
        assert result.exit_code == 0, result.output
        assert "exported" in result.output and path.stat().st_size > 0
        result = run(runner, "import", kind, path)
        assert result.exit_code == 0, result.output
        assert f"新增 0 / created, 更新 0 / updated, 未变 {total} / unchanged" in result.output


def test_export_of_a_subtree_and_its_refusals(app, runner, tmp_path):
    import_clean_ledgers(runner, tmp_path)
    result = run(runner, "export", "cadres", tmp_path / "qd.xlsx", "--org", "qd")
    assert result.exit_code == 0, result.output
    result = run(runner, "import", "cadres", tmp_path / "qd.xlsx")
    assert "未变 2 / unchanged" in result.output  # c001 and c002; c003 is in 烟台

    unknown = run(runner, "export", "cadres", tmp_path / "x.xlsx", "--org", "nowhere")
    assert unknown.exit_code == 1 and "nowhere" in unknown.output and not (tmp_path / "x.xlsx").exists()
    csv_export = run(runner, "export", "cadres", tmp_path / "x.csv")
    assert csv_export.exit_code == 1 and ".xlsx" in csv_export.output


def test_import_refuses_unreadable_files(app, runner, tmp_path):
    (tmp_path / "o.xls").write_bytes(b"old excel")
    result = run(runner, "import", "organisations", tmp_path / "o.xls")
    assert result.exit_code == 1 and "错误 / error:" in result.output and ".xlsx 或 .csv" in result.output
    result = run(runner, "import", "organisations", tmp_path / "missing.csv")
    assert result.exit_code == 1 and "no such file" in result.output
    result = run(runner, "import", "people", tmp_path / "o.csv")
    assert result.exit_code == 2  # not a ledger: click's usage error
