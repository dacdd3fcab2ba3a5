"""The OpenAPI description, the browsable docs, and the API's shared answers: problems, limits, NUL."""
from __future__ import annotations

from pathlib import Path

from web.api.openapi import API_PREFIX
from workflows.api_tokens import SCOPES

from .conftest import assert_problem

STATIC = Path(__file__).resolve().parents[3] / "web" / "static" / "vendor" / "swagger-ui"


def test_the_description_is_generated_from_every_api_route(app, client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    spec = response.get_json()
    assert spec["openapi"].startswith("3.") and spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    documented = {(path, method.upper()) for path, item in spec["paths"].items() for method in item
                  if method != "parameters"}
    routed = {(rule.endpoint, method) for rule in app.url_map.iter_rules()
              if rule.rule.startswith(API_PREFIX) and rule.endpoint.startswith("api_")
              and rule.endpoint != "api_docs.docs" for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert len(documented) == len(routed) >= 30
    for item in spec["paths"].values():
        for method, operation in item.items():
            if method == "parameters":
                continue
            assert operation["security"] == [{"bearerAuth": []}]
            assert operation.get("x-scope", "tasks:read") in SCOPES
            assert operation["responses"]["default"] == {"$ref": "#/components/responses/DEFAULT_ERROR"}
            assert operation["summary"]
    problem = spec["components"]["responses"]["DEFAULT_ERROR"]["content"]
    assert list(problem) == ["application/problem+json"]
    for scope in SCOPES:
        assert f"`{scope}`" in spec["info"]["description"]


def test_browsable_docs_are_served_locally(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page.text and "/api/v1/openapi.json" in page.text
    assert "http" not in page.text.split("<body>")[1]  # no CDN
    assert client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200
    assert (STATIC / "LICENSE").is_file() and (STATIC / "NOTICE").is_file()


def test_every_problem_has_the_same_shape(api, league):
    zhang = api("zhang")
    assert_problem(zhang.get("/api/v1/nothing-here"), 404)
    not_allowed = zhang.delete("/api/v1/tasks")
    assert_problem(not_allowed, 405)
    assert "GET" in not_allowed.headers["Allow"]
    body = assert_problem(zhang.post("/api/v1/tasks/1/delegate", data="{not json", content_type="application/json"),
                          400)
    assert body["type"] == "about:blank"
    invalid = assert_problem(zhang.post("/api/v1/tasks/1/delegate", json={"assignee": 5, "extra": 1}), 422)
    assert {(e["field"], e["location"]) for e in invalid["errors"]} == {("assignee", "json"), ("extra", "json")}


def test_json_bodies_are_limited_to_a_megabyte(api, league):
    response = api("zhang").post("/api/v1/tasks/1/complete", json={"data": {"text": "x" * (1024 * 1024)}},
                                 headers={"If-Match": "*"})
    assert "1,048,576" in assert_problem(response, 413)["detail"]


def test_nul_characters_are_refused_before_they_reach_the_database(api, league):
    zhang = api("zhang")
    assert_problem(zhang.get("/api/v1/organisations/a%00b"), 400)
    assert_problem(zhang.get("/api/v1/tasks?process_id=a%00b"), 400)
    assert_problem(zhang.post("/api/v1/tasks/1/delegate", json={"assignee": "a\u0000b"}), 400)
