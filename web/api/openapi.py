"""The OpenAPI side of the API: a flask-smorest ``Api`` whose errors are problem+json, and its shared schemas.

The description at ``/api/v1/openapi.json`` is built from the routes, their marshmallow schemas
and their docstrings, so it cannot drift from the code.  Errors are answered by ``web/errors.py``
(one mapping for the whole app); flask-smorest's own error handler is not installed.
"""
from __future__ import annotations

import http

import marshmallow as ma
from flask_smorest import Api
from flask_smorest.utils import prepare_response

from workflows.api_tokens import SCOPES

from ..errors import PROBLEM_JSON

API_PREFIX = "/api/v1"

DESCRIPTION = """\
联青 JSON API，供手机客户端、小程序和省级数据平台使用 / lianqing's JSON API for the mobile client,
mini-programs and the provincial data platform.

**Authentication.** Every call carries `Authorization: Bearer lq_...`.  A signed-in person makes and
revokes their own tokens at `/account/tokens` (or an admin with `flask token create`).  A token is
scoped; a scope only narrows what the token may be used for — the person's roles and subtree still
decide every call, exactly as in the web pages.  A browser session cookie is never accepted here.

**Scopes.**
{scopes}

**Errors** are `application/problem+json` (RFC 9457): `type`, `title`, `status`, `detail`, and `errors`
listing the fields of a failed form (`field`, `message`, `location`) or the problems of a refused BPMN
file (`file`, `line`, `element_id`, `message`).  401: no valid token (missing, unknown, expired,
revoked); 403: not allowed, or the token lacks the scope; 404: not found; 409: already done by someone
else; 412: `If-Match` does not match the task's current `ETag`; 413: body too large; 422: invalid data;
428: `If-Match` missing on a task completion.

**Pagination.** Lists answer `{{"items": [...], "next_cursor": "..."}}`; pass `cursor` back for the next
page, until `next_cursor` is null.  The cursor is opaque; `limit` is 1 to 200 (default 50).

**Concurrency.** `GET /tasks/{{id}}` answers an `ETag`; completing the task requires `If-Match` with it.
A client that saw an older state of the task gets 412 instead of overwriting someone else's work.
"""


class ProblemSchema(ma.Schema):
    """An error, as RFC 9457 describes it."""

    type = ma.fields.String(required=True, metadata={"description": "Problem type URI (`about:blank` for plain "
                                                                    "HTTP errors)"})
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String(required=True, metadata={"description": "中文 / English, for a person"})
    errors = ma.fields.List(ma.fields.Dict(), metadata={"description": "Field errors of a failed form, or the "
                                                                       "problems of a refused BPMN file"})


class LeagueApi(Api):
    """flask-smorest's ``Api`` with problem+json error responses and the bearer security scheme."""

    ERROR_SCHEMA = ProblemSchema

    def _register_error_handlers(self):
        """Nothing: ``web/errors.py`` answers every error of the app, the API's included."""

    def _register_responses(self):
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "错误 / error (problem+json)", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_JSON)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)


def api_settings() -> dict:
    """The flask-smorest settings of the API (merged into the app config unless already set)."""
    scopes = "\n".join(f"- `{name}`: {text}" for name, text in SCOPES.items())
    return {
        "API_TITLE": "联青 lianqing API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": API_PREFIX,
        "OPENAPI_JSON_PATH": "openapi.json",
        "API_SPEC_OPTIONS": {
            "info": {"description": DESCRIPTION.format(scopes=scopes)},
            "servers": [{"url": "/"}],
            "components": {"securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer", "bearerFormat": "lq_<prefix>_<secret>"}}},
            "security": [{"bearerAuth": []}],
        },
    }


# Path converters for ids: a number past the column's range is a 404, never a database error.
ID = "int(max=2147483647)"
BIG_ID = "int(max=9223372036854775807)"
INT4_MAX = 2_147_483_647
