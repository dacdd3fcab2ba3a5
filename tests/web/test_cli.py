"""The ``flask`` commands, run through the app's CLI runner on both databases."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.models import HumanTask, ProcessDefinition, ProcessInstance
from engine.schema import current_revision
from tests.conftest import ENGINE_BPMN
from web import create_app
from web.extensions import db
from workflows.demo_province import DEMO_PASSWORD
from workflows.models import Cadre, Organisation

from .conftest import BPMN_DIR, GOOD_RECORD, REPO_ROOT

MALFORMED = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="Defs" targetNamespace="http://x">
  <bpmn:process id="broken" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1">
  </bpmn:process>
</bpmn:definitions>
"""


def invoke(runner, *args: str):
    """Run one ``flask`` command; return the result."""
    return runner.invoke(args=list(args))


def ok(runner, *args: str) -> str:
    """Run a command that must succeed; return its output."""
    result = invoke(runner, *args)
    assert result.exit_code == 0, result.output
    return result.output


def task_lines(runner, *args: str) -> list[list[str]]:
    """``flask tasks`` as rows of fields."""
    return [line.split("\t") for line in ok(runner, "tasks", *args).splitlines()]


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def start(runner, clock, days: float = 5, **data) -> int:
    """``flask start activity_record`` with a deadline in ``days``; returns the printed id."""
    data = {"deadline": (clock.now() + timedelta(days=days)).isoformat(), **data}
    output = ok(runner, "start", "activity_record", "--data", json.dumps(data, ensure_ascii=False),
                "--org", "qd-sn")
    return int(output.strip())


# ---------------------------------------------------------------------------------------- db upgrade

def test_db_upgrade_is_idempotent(app, runner, database_url):
    before = current_revision(database_url)
    assert before is not None
    for _ in range(2):
        assert "current schema" in ok(runner, "db", "upgrade")
    assert current_revision(database_url) == before
    assert count(app, ProcessDefinition) == 0  # the tables are there and untouched


def test_db_upgrade_creates_the_schema_of_an_empty_database(tmp_path, clock):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    fresh = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "ENGINE_CLOCK": clock,
                        "BPMN_DIR": str(BPMN_DIR), "START_SWEEPER": False})
    assert current_revision(url) is None
    assert "current schema" in ok(fresh.test_cli_runner(), "db", "upgrade")
    assert current_revision(url) is not None
    assert count(fresh, ProcessInstance) == 0
    with fresh.app_context():
        db.engine.dispose()


# -------------------------------------------------------------------------------------------- deploy

def test_deploy_all_deploys_every_process_once(app, runner):
    files = sorted(BPMN_DIR.glob("*.bpmn"))
    first = ok(runner, "deploy", "--all")
    assert "deployed activity_record version 1" in first
    assert first.count("deployed ") == len(files)
    again = ok(runner, "deploy", "--all")
    assert again.count("unchanged ") == len(files) and "deployed " not in again
    with app.app_context():
        definitions = {d.process_id: d for d in db.session.scalars(select(ProcessDefinition))}
        assert len(definitions) == len(files) and all(d.version == 1 for d in definitions.values())
        assert set(definitions["activity_record"].forms) == {"activity_record.json", "activity_verify.json"}


def test_deploy_refuses_a_malformed_file_with_its_line_and_still_deploys_the_good_one(app, runner, tmp_path):
    broken = tmp_path / "broken.bpmn"
    broken.write_text(MALFORMED, encoding="utf-8")
    result = invoke(runner, "deploy", str(broken), str(ENGINE_BPMN / "safe_script.bpmn"))
    assert result.exit_code == 1
    assert "refused broken.bpmn:5" in result.output  # the line where the parser found the mismatch
    assert "deployed safe_script version 1" in result.output
    with app.app_context():
        assert db.session.scalars(select(ProcessDefinition.process_id)).all() == ["safe_script"]


def test_deploy_of_a_missing_file_fails(app, runner, tmp_path):
    missing = tmp_path / "nowhere.bpmn"
    result = invoke(runner, "deploy", str(missing))
    assert result.exit_code == 1
    assert "nowhere.bpmn" in result.output and "no such file" in result.output
    assert count(app, ProcessDefinition) == 0


def test_deploy_without_files_is_a_usage_error(runner):
    result = invoke(runner, "deploy")
    assert result.exit_code == 2
    assert "--all" in result.output


# --------------------------------------------------------------------------------------------- start

def test_start_prints_the_new_instances_id(app, runner, clock, deployed):
    instance_id = start(runner, clock)
    with app.app_context():
        instance = db.session.get(ProcessInstance, instance_id)
        assert (instance.process_id, instance.organisation_id, instance.status) == \
            ("activity_record", "qd-sn", "running")


@pytest.mark.parametrize("data, message", [("{place: 团委}", "not JSON"), ("[1, 2]", "JSON object")])
def test_start_with_bad_json_fails_with_a_clear_message(app, runner, deployed, data, message):
    result = invoke(runner, "start", "activity_record", "--data", data)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert count(app, ProcessInstance) == 0


def test_start_of_an_unknown_process_fails_with_the_message(app, runner):
    result = invoke(runner, "start", "no_such_process")
    assert result.exit_code == 1
    assert "no_such_process" in result.output and "not deployed" in result.output
    assert count(app, ProcessInstance) == 0


# ------------------------------------------------------------------------------- tasks, claim, complete

def test_tasks_lists_one_tab_separated_line_per_ready_task(runner, clock, deployed):
    assert ok(runner, "tasks") == ""
    free = start(runner, clock, days=5)
    mine = start(runner, clock, days=3, cadre_assignee="张伟")
    rows = task_lines(runner)
    assert len(rows) == 2
    assert all(len(row) == 7 for row in rows)
    by_instance = {int(row[1]): row for row in rows}
    assert by_instance[free][2:6] == ["Task_record", "记录活动", "cadre", "-"]
    assert by_instance[mine][2:6] == ["Task_record", "记录活动", "cadre", "张伟"]
    assert by_instance[mine][6] == "2026-05-04T00:00:00+00:00"
    assert [int(row[1]) for row in rows] == [mine, free]  # most urgent first

    [only] = task_lines(runner, "--instance", str(free))
    assert int(only[1]) == free


def test_complete_moves_the_process_on(runner, clock, deployed, league):
    instance_id = start(runner, clock, cadre_assignee="zhang")
    [[task_id, *_]] = task_lines(runner)
    output = ok(runner, "complete", task_id, "--data", json.dumps(GOOD_RECORD, ensure_ascii=False), "--as", "zhang")
    assert f"completed {task_id} 记录活动" in output
    [verify] = task_lines(runner)
    assert int(verify[1]) == instance_id and verify[2:5] == ["Task_verify", "核实活动", "inspector"]


def test_complete_with_invalid_form_data_fails_naming_the_fields(runner, clock, deployed, league):
    start(runner, clock)
    [[task_id, *_]] = task_lines(runner)
    result = invoke(runner, "complete", task_id, "--data", '{"kind": "party", "youth_count": 0}', "--as", "li")
    assert result.exit_code == 1
    for field in ("kind", "youth_count", "date", "place", "description"):
        assert field in result.output
    assert "Traceback" not in result.output
    [still] = task_lines(runner)
    assert still[0] == task_id and still[2] == "Task_record"


def test_complete_twice_or_by_someone_else_fails(runner, clock, deployed, league):
    start(runner, clock, cadre_assignee="zhang")
    [[task_id, *_]] = task_lines(runner)
    data = json.dumps(GOOD_RECORD, ensure_ascii=False)
    refused = invoke(runner, "complete", task_id, "--data", data, "--as", "li")
    assert refused.exit_code == 1 and "zhang" in refused.output
    ok(runner, "complete", task_id, "--data", data, "--as", "zhang")
    again = invoke(runner, "complete", task_id, "--data", data, "--as", "zhang")
    assert again.exit_code == 1 and "already completed" in again.output


def test_claim_assigns_the_task(app, runner, clock, deployed, league):
    start(runner, clock)
    [[task_id, *_]] = task_lines(runner)
    assert f"claimed {task_id} for li" in ok(runner, "claim", task_id, "--as", "li")
    [row] = task_lines(runner)
    assert row[5] == "li"
    with app.app_context():
        assert db.session.get(HumanTask, int(task_id)).state == "claimed"
    taken = invoke(runner, "claim", task_id, "--as", "wang")
    assert taken.exit_code == 1 and "li" in taken.output


def test_claim_outside_ones_organisation_is_refused(runner, clock, deployed, league):
    start(runner, clock)
    [[task_id, *_]] = task_lines(runner)
    refused = invoke(runner, "claim", task_id, "--as", "wang")  # a cadre of Jinan, the task is Qingdao's
    assert refused.exit_code == 1 and "cadre" in refused.output


def test_claim_of_an_unknown_task_fails(runner):
    result = invoke(runner, "claim", "424242", "--as", "李娜")
    assert result.exit_code == 1 and "424242" in result.output


# -------------------------------------------------------------------------------------------- timers

def test_timers_tick_fires_the_deadline_and_creates_the_follow_up(runner, clock, deployed):
    instance_id = start(runner, clock, days=5)
    assert ok(runner, "timers", "tick").strip() == "fired 0"
    clock.advance(timedelta(days=5, hours=1))
    assert ok(runner, "timers", "tick").strip() == "fired 1"
    [row] = task_lines(runner)
    assert int(row[1]) == instance_id
    assert row[2:5] == ["Task_followup", "督办逾期未记录的活动", "organiser"]
    assert ok(runner, "timers", "tick").strip() == "fired 0"


# ---------------------------------------------------------------------------------------------- demo

def test_demo_load_generates_the_province_starts_three_instances_and_prints_the_accounts(app, client, runner,
                                                                                          deployed, sign_in):
    output = ok(runner, "demo", "load")
    assert "loaded 3 demo instances of activity_record" in output
    assert "演示账号 / demo accounts" in output
    for username in ("prov-admin", "prov-organiser", "qd-organiser", "qd-01-coordinator", "qd-01-inspector",
                     "c000001", "c000002", "c000003"):
        assert username in output
    assert DEMO_PASSWORD in output
    assert count(app, ProcessInstance) == 3
    organisations = count(app, Organisation)
    assert organisations > 100 and count(app, Cadre) == 300

    rows = task_lines(runner)
    assert [row[3:6] for row in rows] == [["记录活动", "cadre", username] for username in ("c000003", "c000002",
                                                                                          "c000001")]
    with app.app_context():
        cadres = {code: (name, org) for code, name, org in db.session.execute(
            select(Cadre.code, Cadre.name, Organisation.code)
            .join(Organisation, Cadre.organisation_id == Organisation.id)
            .where(Cadre.code.in_(["c000001", "c000002", "c000003"])))}
        instance_orgs = {instance_id: org for instance_id, org in db.session.execute(
            select(ProcessInstance.id, ProcessInstance.organisation_id))}
    for row in rows:  # each instance belongs to its cadre's organisation
        assert instance_orgs[int(row[1])] == cadres[row[5]][1]
    for name, _org in cadres.values():
        assert name in output

    # The first demo cadre signs in with the printed password and finds their task.
    sign_in("c000001", DEMO_PASSWORD)
    page = client.get("/").text
    assert cadres["c000001"][0] in page and page.count("记录活动") == 1

    assert "nothing loaded" in ok(runner, "demo", "load")
    assert count(app, ProcessInstance) == 3 and count(app, Organisation) == organisations


def test_demo_load_before_deploy_says_what_to_do_and_loads_nothing(app, runner):
    result = invoke(runner, "demo", "load")
    assert result.exit_code == 1
    assert "activity_record" in result.output and "flask deploy --all" in result.output
    assert isinstance(result.exception, SystemExit)  # a message, not a traceback
    assert count(app, ProcessInstance) == 0
    assert count(app, Organisation) == 0  # the province and the instances go in together or not at all


def test_demo_load_refuses_an_unknown_size(app, runner):
    result = invoke(runner, "demo", "load", "--size", "huge")
    assert result.exit_code == 2 and "small" in result.output and "province" in result.output
    assert count(app, Organisation) == 0


# ------------------------------------------------------------------------------ the flask executable

def test_flask_executable_finds_the_app_without_app_option(tmp_path):
    flask = Path(sys.executable).parent / "flask"
    env = {key: value for key, value in os.environ.items() if key not in ("FLASK_APP", "DATABASE_URL")}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}", LIANQING_INSTANCE_DIR=str(tmp_path))
    result = subprocess.run([str(flask), "--help"], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Could not locate a Flask application" not in result.stderr
    commands = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ") and line.split()}
    assert {"deploy", "timers", "tasks", "start", "complete", "claim", "db", "demo"} <= commands
