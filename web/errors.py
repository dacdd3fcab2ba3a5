"""The one place where errors become HTTP answers: ``application/problem+json`` for the API, a page for people.

A problem (RFC 9457) has ``type``, ``title``, ``status`` and ``detail``; a failed form adds
``errors``, one entry per field (``field``, ``message`` and, for request parsing, ``location``);
a refused BPMN file lists ``file``, ``line`` and ``element_id`` for each problem.
"""
from __future__ import annotations

import re

from flask import Flask, render_template, request

from engine.errors import EngineError, FormInvalid, InvalidBpmn
from workflows.api_tokens import ScopeMissing, TokenRefused

from .extensions import db

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:lianqing:problem:"


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def problem_type(name: str) -> str:
    """The problem ``type`` URI of an error class name: ``TaskAlreadyCompleted`` → ``urn:lianqing:problem:task-already-completed``."""
    return PROBLEM_TYPE_PREFIX + re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def problem(status: int, title: str, detail: str, type_: str = "about:blank", errors: list | None = None,
            headers: dict | None = None):
    """A problem+json answer (a Flask response tuple)."""
    body = {"type": type_, "title": title, "status": status, "detail": detail}
    if errors is not None:
        body["errors"] = errors
    return body, status, {**(headers or {}), "Content-Type": PROBLEM_JSON}


def _challenge(error: EngineError) -> dict:
    """The ``WWW-Authenticate`` header of a refused token or a missing scope (RFC 6750)."""
    if isinstance(error, TokenRefused):
        reason = f', error="{error.reason}"' if error.reason else ""
        return {"WWW-Authenticate": f'Bearer realm="lianqing"{reason}'}
    if isinstance(error, ScopeMissing):
        return {"WWW-Authenticate": f'Bearer realm="lianqing", error="insufficient_scope", scope="{error.scope}"'}
    return {}


def _engine_error(error: EngineError):
    db.session.rollback()
    errors = None
    if isinstance(error, FormInvalid):
        errors = [{"field": e.field, "message": e.message} for e in error.errors]
    if isinstance(error, InvalidBpmn):
        errors = [{"file": p.file, "line": p.line, "element_id": p.element_id, "message": p.message}
                  for p in error.problems]
    if _wants_json():
        return problem(error.http_status, type(error).__name__, error.message, problem_type(type(error).__name__),
                       errors, _challenge(error))
    return render_template("error.html", status=error.http_status, message=error.message,
                           errors=errors or []), error.http_status


def _csrf_error(error):
    error.description = ("表单已过期或来源不明，请刷新页面后重新提交 / the form expired or did not come from this "
                         "site; reload the page and submit again")
    return _http_error(error)


def _too_large_error(error):
    """A body over ``MAX_CONTENT_LENGTH`` (or with too many parts): the limits in words, nothing was stored."""
    from werkzeug.exceptions import RequestEntityTooLarge
    if error.description == RequestEntityTooLarge.description:  # Werkzeug's own words: say ours
        from flask import current_app
        config, mib = current_app.config, 1024 * 1024
        limit, per_file = config.get("MAX_CONTENT_LENGTH") or 0, config.get("EVIDENCE_MAX_FILE_BYTES") or 0
        error.description = (f"提交的内容过大，未保存任何文件：一次提交合计不超过 {limit / mib:.0f} MB，每个文件不超过 "
                             f"{per_file / mib:.0f} MB；请压缩照片或分几次上传 / the request is larger than {limit:,} "
                             f"bytes (each file at most {per_file:,} bytes); nothing was stored: compress the "
                             "photos or upload them in several goes")
    return _http_error(error)


def _parsing_errors(data) -> list | None:
    """Field errors of a request that failed its schema (webargs puts them in ``data["messages"]``)."""
    messages = (data or {}).get("messages") if isinstance(data, dict) else None
    if not isinstance(messages, dict):
        return None
    errors = []

    def walk(location: str, prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(location, f"{prefix}/{key}" if prefix else str(key), inner)
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            errors.extend({"field": prefix, "location": location, "message": message} for message in value)
        else:
            errors.append({"field": prefix, "location": location, "message": str(value)})

    for location, fields in messages.items():
        walk(location, "", fields)
    return errors


def _http_error(error):
    code = getattr(error, "code", 500) or 500
    message = getattr(error, "description", None) or "服务器内部错误 / internal server error"
    if code >= 500:
        db.session.rollback()
    if _wants_json():
        data = getattr(error, "data", None)
        headers = {}
        if hasattr(error, "get_headers"):  # e.g. Allow on a 405
            headers.update((k, v) for k, v in error.get_headers() if k.lower() != "content-type")
        if isinstance(data, dict) and isinstance(data.get("headers"), dict):
            headers.update(data["headers"])
        errors = _parsing_errors(data)
        if errors is not None and code == 422:
            message = "请求参数有误 / the request does not match its schema: " + "; ".join(
                f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem(code, getattr(error, "name", "Error"), message, errors=errors, headers=headers)
    from werkzeug.exceptions import HTTPException
    if isinstance(error, HTTPException) and message == type(error).description:
        message = ""  # Werkzeug's stock text is English only; the page's headline and hint say it in the locale
    return render_template("error.html", status=code, message=message, errors=[]), code


def register_error_handlers(app: Flask) -> None:
    """Install the handlers on ``app``."""
    from flask_wtf.csrf import CSRFError
    from werkzeug.exceptions import HTTPException
    app.register_error_handler(EngineError, _engine_error)
    app.register_error_handler(CSRFError, _csrf_error)
    from werkzeug.exceptions import RequestEntityTooLarge
    app.register_error_handler(RequestEntityTooLarge, _too_large_error)
    app.register_error_handler(HTTPException, _http_error)

    @app.errorhandler(Exception)
    def _unexpected(error):  # never a stack trace for a person
        app.logger.exception("unhandled error")
        db.session.rollback()
        return _http_error(type("E", (), {"code": 500, "description": "服务器内部错误，已记录 / internal error, logged",
                                          "name": "Internal Server Error"})())
