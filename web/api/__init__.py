"""The JSON API under ``/api/v1``, for the mobile client and other systems.

Thin like the pages: parse, check with the same rights functions, call the engine or workflows,
answer.  Authentication is a bearer token (``workflows/api_tokens.py``); errors are
problem+json (``web/errors.py``); the OpenAPI description is generated from these modules by
flask-smorest and served at ``/api/v1/openapi.json``, with Swagger UI at ``/api/v1/docs``.
"""
from __future__ import annotations

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    render_template,
    request,
    url_for,
)

from ..extensions import csrf
from .auth import authenticate_request
from .openapi import API_PREFIX, LeagueApi, api_settings

# JSON bodies are small; a BPMN deployment may use the app's whole MAX_CONTENT_LENGTH.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
docs_bp = Blueprint("api_docs", __name__, url_prefix=API_PREFIX, template_folder="templates")


@docs_bp.get("/docs")
def docs():
    """Swagger UI over the OpenAPI description (assets served from web/static/vendor, no CDN)."""
    return render_template("api/docs.html", spec_url=url_for("api-docs.openapi_json"))


def guard_request() -> None:
    """Before every API call: the body size limit, the token and its scope, and no NUL characters."""
    large = request.endpoint == "api_processes.deploy_process"
    limit = current_app.config["MAX_CONTENT_LENGTH"] if large else current_app.config["API_MAX_BODY_BYTES"]
    request.max_content_length = limit
    if limit is not None and (request.content_length or 0) > limit:
        abort(413, description=f"请求体过大（上限 {limit:,} 字节）/ request body larger than {limit:,} bytes")
    authenticate_request()
    # PostgreSQL text cannot hold NUL; refuse it here rather than fail deep inside a query.
    if "\x00" in request.path or any("\x00" in key or "\x00" in value
                                     for key, value in request.args.items(multi=True)):
        abort(400, description="请求中不能含有 NUL 字符 / NUL characters are not accepted")
    if request.is_json and b"\\u0000" in request.get_data():
        abort(400, description="请求中不能含有 NUL 字符 / NUL characters are not accepted")


def init_app(app: Flask) -> None:
    """Mount the API on ``app``: blueprints, OpenAPI description, docs, token page, ``flask token``."""
    from . import (
        assessment,
        campaigns,
        cli,
        directory,
        instances,
        processes,
        tasks,
        token_pages,
        tokens,
        wishes,
    )
    for key, value in api_settings().items():
        app.config.setdefault(key, value)
    app.config.setdefault("API_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)
    api = LeagueApi(app)
    app.extensions["lianqing_api"] = api
    resources = (tasks, instances, processes, wishes, directory, tokens, campaigns, assessment)
    for module in resources:
        csrf.exempt(module.blp)  # a token, not a cookie, authenticates these: there is nothing to forge
        api.register_blueprint(module.blp)
    guarded = {module.blp.name for module in resources}

    @app.before_request
    def _guard_api_calls():
        if request.blueprint in guarded:
            guard_request()
    app.register_blueprint(docs_bp)
    app.register_blueprint(token_pages.bp)
    cli.init_app(app)
