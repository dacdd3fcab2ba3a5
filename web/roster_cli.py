"""``flask roster``: import and export the league's ledgers (组织 / 团干部 / 青年) as spreadsheets."""
from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy.exc import IntegrityError

from engine.errors import NotFound
from workflows.organisations import by_code
from workflows.roster import (LEDGER_NAMES_ZH, LEDGERS, RosterFileError, export_roster, import_roster, ledger_kind,
                              read_roster_file)

from .extensions import db
from .runtime import current_engine

roster = AppGroup("roster", help="名册导入导出 / import and export the ledgers of organisations, cadres and youth.")

LEDGER_CHOICE = click.Choice([*LEDGERS, *LEDGER_NAMES_ZH.values()])


def _fail(message: str) -> None:
    db.session.rollback()
    click.echo(f"错误 / error: {message}", err=True)
    raise SystemExit(1)


@roster.command("import")
@click.argument("kind", type=LEDGER_CHOICE)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--good-rows", is_flag=True, help="Write the good rows even when some rows are bad.")
def roster_import(kind: str, file: Path, good_rows: bool) -> None:
    """Import a ledger FILE (.xlsx or .csv); nothing is written if any row is bad, unless --good-rows."""
    try:
        sheet = read_roster_file(file)
    except RosterFileError as error:
        _fail(str(error))
    try:
        report = import_roster(db.session, kind, sheet, current_engine().clock.now(), accept_good_rows=good_rows)
        if report.written:
            db.session.commit()
        else:
            db.session.rollback()
    except IntegrityError:
        # Someone else wrote the same codes or phones while this file was being checked.
        _fail("导入期间数据被他人修改，请重新导入 / the data changed during the import; run it again")
    for problem in report.problems:
        click.echo(str(problem))
    click.echo(report.summary())
    if report.problems and not report.written:
        _fail("文件有误，未写入任何数据（可用 --good-rows 只导入正确的行）/ the file has errors; nothing was written "
              "(--good-rows writes the good rows)")


@roster.command("export")
@click.argument("kind", type=LEDGER_CHOICE)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--org", "org_code", default=None, help="Only this organisation's subtree.")
def roster_export(kind: str, file: Path, org_code: str | None) -> None:
    """Export a ledger to FILE (.xlsx), with full phone numbers: keep the file safe."""
    if file.suffix.lower() != ".xlsx":
        _fail(f"导出文件须为 .xlsx / the export is an .xlsx file, not {file.suffix or 'a file without extension'}")
    root = None
    if org_code:
        try:
            root = by_code(db.session, org_code)
        except NotFound as error:
            _fail(error.message)
    data = export_roster(db.session, kind, root)
    try:
        file.write_bytes(data)
    except OSError as error:
        _fail(f"无法写入文件 / cannot write {file}: {error.strerror}")
    ledger = ledger_kind(kind)
    click.echo(f"已导出{LEDGER_NAMES_ZH[ledger]}名册 / exported the {ledger} ledger to {file}")
