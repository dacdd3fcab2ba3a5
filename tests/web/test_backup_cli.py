"""``flask db backup`` / ``flask db restore``: the commands around engine/backup.py."""
from __future__ import annotations

from engine.schema import current_revision
from web.extensions import db


def _instances(app) -> int:
    with app.app_context():
        return db.session.execute(db.text("SELECT count(*) FROM process_instance")).scalar()


def test_backup_then_restore_with_the_cli(app, runner, start_record, database_url, tmp_path):
    start_record()
    backup = tmp_path / "nightly.backup"
    result = runner.invoke(args=["db", "backup", str(backup)])
    assert result.exit_code == 0, result.output
    assert f"backed up to {backup}" in result.output
    assert f"schema revision {current_revision(database_url)}" in result.output

    start_record()
    assert _instances(app) == 2
    refused = runner.invoke(args=["db", "restore", str(backup)])
    assert refused.exit_code == 1
    assert "not empty" in refused.output and "--force" in refused.output
    assert _instances(app) == 2

    restored = runner.invoke(args=["db", "restore", str(backup), "--force"])
    assert restored.exit_code == 0, restored.output
    assert "restart the app" in restored.output
    assert _instances(app) == 1

    again = runner.invoke(args=["db", "backup", str(backup)])
    assert again.exit_code == 1 and "exists already" in again.output
