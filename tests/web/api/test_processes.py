"""Process definitions over the API: list, read, BPMN XML, deploy (multipart or raw XML)."""
from __future__ import annotations

import io

from tests.web.conftest import BPMN_DIR

from .conftest import assert_problem

VOICE = (BPMN_DIR / "youth_voice.bpmn").read_bytes()
VOICE_FORMS = ["youth_voice.answer.json", "youth_voice.rate.json"]


def _multipart(content: bytes = VOICE, forms=VOICE_FORMS, name="youth_voice.bpmn"):
    return {"file": (io.BytesIO(content), name),
            "forms": [(io.BytesIO((BPMN_DIR / form).read_bytes()), form) for form in forms]}


def test_list_get_and_xml(api, deploy):
    deploy("micro_wish")
    deploy("activity_record")
    reader = api("zhang", ["processes:read"])
    first = reader.get("/api/v1/processes?limit=1").get_json()
    assert [d["process_id"] for d in first["items"]] == ["activity_record"]
    assert first["items"][0]["forms"] == ["activity_record.json", "activity_verify.json"]
    rest = reader.get(f"/api/v1/processes?limit=1&cursor={first['next_cursor']}").get_json()
    assert [d["process_id"] for d in rest["items"]] == ["micro_wish"] and rest["next_cursor"] is None
    one = reader.get("/api/v1/processes/micro_wish").get_json()
    assert one["version"] == 1 and one["versions"] == [1]
    xml = reader.get("/api/v1/processes/micro_wish/xml")
    assert xml.status_code == 200 and xml.mimetype == "application/xml" and b"micro_wish" in xml.data
    assert reader.get("/api/v1/processes/micro_wish/xml?version=1").data == xml.data
    assert_problem(reader.get("/api/v1/processes/micro_wish/xml?version=2"), 404)
    assert_problem(reader.get("/api/v1/processes/nothing"), 404)
    assert_problem(api("zhang", ["tasks:read"]).get("/api/v1/processes"), 403, "ScopeMissing")


def test_the_provincial_admin_deploys_multipart_with_forms(api, league):
    admin = api("P_admin")
    created = admin.post("/api/v1/processes", data=_multipart(), content_type="multipart/form-data")
    assert created.status_code == 201, created.text
    body = created.get_json()
    assert body["process_id"] == "youth_voice" and body["version"] == 1 and body["created"] is True
    assert body["forms"] == VOICE_FORMS and body["deployed_by"] == "P_admin"
    again = admin.post("/api/v1/processes", data=_multipart(), content_type="multipart/form-data")
    assert again.status_code == 200 and again.get_json()["created"] is False


def test_deploy_raw_xml_and_refusals_by_line_and_element(api, league):
    admin = api("P_admin")
    missing_forms = admin.post("/api/v1/processes?filename=youth_voice.bpmn", data=VOICE,
                               content_type="application/xml")
    body = assert_problem(missing_forms, 422, "InvalidBpmn")
    assert body["type"] == "urn:lianqing:problem:invalid-bpmn"
    assert {e["element_id"] for e in body["errors"]} >= {"Task_answer", "Task_rate"}
    assert all(e["file"] == "youth_voice.bpmn" and isinstance(e["line"], int) for e in body["errors"])
    broken = admin.post("/api/v1/processes?filename=broken.bpmn", data=b"<definitions>\n<process>\n</definitions>",
                        content_type="text/xml")
    error = assert_problem(broken, 422)["errors"][0]
    assert error["file"] == "broken.bpmn" and error["line"] == 3
    plain = admin.post("/api/v1/processes", data=(BPMN_DIR.parent / "tests/engine/bpmn/safe_script.bpmn").read_bytes(),
                       content_type="application/bpmn+xml")
    assert plain.status_code == 201 and plain.get_json()["filename"] == "process.bpmn"


def test_deploy_needs_a_file(api, league):
    response = api("P_admin").post("/api/v1/processes", json={"file": "x"})
    assert "BPMN" in assert_problem(response, 422, "InvalidBpmn")["detail"]
    empty = api("P_admin").post("/api/v1/processes", data={}, content_type="multipart/form-data")
    assert_problem(empty, 422)


def test_only_a_provincial_admin_deploys(api, league):
    for username in ("S_org", "P_org", "zhang"):
        response = api(username).post("/api/v1/processes", data=_multipart(), content_type="multipart/form-data")
        assert_problem(response, 403, "NotAllowed")
    assert_problem(api("P_admin", ["processes:read"]).post("/api/v1/processes", data=VOICE,
                                                          content_type="application/xml"), 403, "ScopeMissing")


def test_deploy_size_limit_is_a_413_problem(app, api, league):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    response = api("P_admin").post("/api/v1/processes", data=VOICE, content_type="application/xml")
    assert "1,000" in assert_problem(response, 413)["detail"]
