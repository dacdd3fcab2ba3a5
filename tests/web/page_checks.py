"""Small things the UI page tests share: posting a form with its CSRF token, reading a page's diagram box."""
from __future__ import annotations

import json
import re

from sqlalchemy import select

from engine.models import HumanTask
from web.extensions import db

from .conftest import csrf_token

# A process with one cadre task and no deadline (the inbox sorts it last).
PLAIN_TASK_BPMN = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="Defs_plain"
                  targetNamespace="http://lianqing.example/test">
  <bpmn:process id="plain_task" name="\xe6\x99\xae\xe9\x80\x9a\xe4\xbb\xbb\xe5\x8a\xa1" isExecutable="true">
    <bpmn:laneSet id="LaneSet_1">
      <bpmn:lane id="Lane_cadre" name="cadre">
        <bpmn:flowNodeRef>Start_1</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>Task_plain</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>End_1</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="Start_1"><bpmn:outgoing>Flow_1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="Task_plain" name="Plain task">
      <bpmn:incoming>Flow_1</bpmn:incoming><bpmn:outgoing>Flow_2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="End_1"><bpmn:incoming>Flow_2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="Flow_1" sourceRef="Start_1" targetRef="Task_plain" />
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Task_plain" targetRef="End_1" />
  </bpmn:process>
</bpmn:definitions>
"""


def post(client, path: str, data: dict | None = None, token_page: str = "/", **kwargs):
    """POST a form with the session's CSRF token."""
    return client.post(path, data={**(data or {}), "csrf_token": csrf_token(client, token_page)}, **kwargs)


def diagram_of(page: str, box_id: str) -> dict:
    """The JSON a page gives its diagram box ``box_id`` (XML and markers)."""
    match = re.search(rf'<script type="application/json" id="{box_id}-data">(.*?)</script>', page, re.DOTALL)
    assert match, f"no diagram box {box_id} on the page"
    return json.loads(match.group(1))


def open_task_id(app, instance_id: int, bpmn_id: str | None = None) -> int:
    """The id of an open human task of an instance."""
    with app.app_context():
        query = select(HumanTask.id).where(HumanTask.instance_id == instance_id,
                                           HumanTask.state.in_(HumanTask.OPEN_STATES))
        if bpmn_id is not None:
            query = query.where(HumanTask.bpmn_id == bpmn_id)
        return db.session.scalar(query.order_by(HumanTask.id))


def engine_of(app):
    """The app's engine."""
    return app.extensions["lianqing_engine"]
