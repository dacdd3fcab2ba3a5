"""lianqing's web layer: the app factory.  Thin: parse, call the engine or workflows, answer."""
from __future__ import annotations

import os

from flask import Flask

from .config import INSTANCE_DIR, Config
from .extensions import csrf, db, login_manager


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: defaults, then ``instance/config.py`` if present, then ``test_config``."""
    app = Flask(__name__, instance_path=str(INSTANCE_DIR), instance_relative_config=True)
    app.config.from_object(Config)
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
    else:
        app.config.from_mapping(test_config)
    os.makedirs(app.instance_path, exist_ok=True)

    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            from engine.database import configure_sqlite
            configure_sqlite(db.engine)

    from .runtime import init_engine, init_jobs
    init_engine(app)

    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "请先登录 / please sign in"
    from . import i18n
    i18n.init_app(app)  # Flask-Babel: the language switch, dates in LIANQING_TIMEZONE
    from . import session_user  # noqa: F401  (registers the user loader)

    from .errors import register_error_handlers
    register_error_handlers(app)
    from . import observability
    observability.init_app(app)  # request ids, JSON logs, /metrics

    from . import admin, assessment, auth, campaigns, cli, instances, main, points, quotas, tasks, wish_pool, youth
    for module in (main, auth, tasks, campaigns, assessment, quotas, points, instances, admin, youth, wish_pool):
        app.register_blueprint(module.bp)
    from . import contacts, roster_pages
    app.register_blueprint(contacts.bp)      # 我的联系青年
    app.register_blueprint(roster_pages.bp)  # /admin/roster: upload, dry run, apply
    from . import evidence
    evidence.init_app(app)  # the download route, and MAX_CONTENT_LENGTH from the evidence limits
    cli.init_app(app)
    from . import api
    api.init_app(app)
    campaigns.init_cli(app)
    assessment.init_cli(app)

    init_jobs(app)  # with START_SWEEPER, its thread also runs the timer sweep
    return app
