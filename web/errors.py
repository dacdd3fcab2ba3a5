"""The one place where engine errors become HTTP answers (JSON for the API, a page for people)."""
from __future__ import annotations

from flask import Flask, render_template, request

from engine.errors import EngineError, FormInvalid, InvalidBpmn

from .extensions import db


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _engine_error(error: EngineError):
    db.session.rollback()
    body = {"title": type(error).__name__, "status": error.http_status, "detail": error.message}
    if isinstance(error, FormInvalid):
        body["errors"] = [{"field": e.field, "message": e.message} for e in error.errors]
    if isinstance(error, InvalidBpmn):
        body["errors"] = [{"file": p.file, "line": p.line, "element_id": p.element_id, "message": p.message}
                          for p in error.problems]
    if _wants_json():
        return body, error.http_status, {"Content-Type": "application/problem+json"}
    return render_template("error.html", status=error.http_status, message=error.message,
                           errors=body.get("errors", [])), error.http_status


def _csrf_error(error):
    error.description = ("表单已过期或来源不明，请刷新页面后重新提交 / the form expired or did not come from this "
                         "site; reload the page and submit again")
    return _http_error(error)


def _http_error(error):
    code = getattr(error, "code", 500) or 500
    message = getattr(error, "description", None) or "服务器内部错误 / internal server error"
    if code >= 500:
        db.session.rollback()
    if _wants_json():
        return {"title": getattr(error, "name", "Error"), "status": code, "detail": message}, code, \
            {"Content-Type": "application/problem+json"}
    return render_template("error.html", status=code, message=message, errors=[]), code


def register_error_handlers(app: Flask) -> None:
    """Install the handlers on ``app``."""
    from flask_wtf.csrf import CSRFError
    from werkzeug.exceptions import HTTPException
    app.register_error_handler(EngineError, _engine_error)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)

    @app.errorhandler(Exception)
    def _unexpected(error):  # never a stack trace for a person
        app.logger.exception("unhandled error")
        db.session.rollback()
        return _http_error(type("E", (), {"code": 500, "description": "服务器内部错误，已记录 / internal error, logged",
                                          "name": "Internal Server Error"})())
