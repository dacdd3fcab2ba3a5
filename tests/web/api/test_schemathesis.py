"""Schemathesis runs against the served OpenAPI description: no 5xx, no answer that breaks the schema.

A bounded, derandomized run (``MAX_EXAMPLES`` valid and ``NEGATIVE_EXAMPLES`` invalid requests per
operation) inside pytest, with the Flask app as WSGI, as the provincial admin (every scope, every
right) with a little data to find.  Hypothesis is driven directly (``APIOperation.as_strategy``), so
one app and database serve every operation.  It runs on one database, to stay near a minute:
PostgreSQL when ``TEST_DATABASE_URL`` is set (CI; the stricter of the two: NUL bytes, integer
ranges, string lengths), else SQLite.  Every endpoint's own tests run on both.
"""
from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

MAX_EXAMPLES = 20      # valid requests per operation
NEGATIVE_EXAMPLES = 5  # invalid ones (wrong types, missing fields) per operation
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
CONFIG = {"generation": {"deterministic": True, "with-security-parameters": False}}
RUNS = ((schemathesis.GenerationMode.POSITIVE, MAX_EXAMPLES), (schemathesis.GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES))


@pytest.fixture
def admin_token(app, make_token, record_task):
    """The provincial admin's token, with an open task and an instance to find."""
    record_task(assignee="zhang")
    return make_token("P_admin")


@pytest.mark.parametrize("database_url", ["postgresql" if os.environ.get("TEST_DATABASE_URL") else "sqlite"],
                         indirect=True)
def test_api_conforms_to_its_openapi_description(app, admin_token):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=schemathesis.Config.from_dict(CONFIG))
    headers = {"Authorization": f"Bearer {admin_token}"}
    failures, operations = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode, examples in RUNS:
            @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case):
                case.call_and_validate(headers=headers, checks=CHECKS)
            try:
                check()
            except Unsatisfiable:
                assert mode is schemathesis.GenerationMode.NEGATIVE  # nothing to negate, e.g. no parameters
            except Exception as failure:  # noqa: BLE001 - collect every operation's failure, report together
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {failure}")
    assert operations >= 30
    assert not failures, "\n\n".join(failures)
