"""The engine instance of an app, and the embedded timer sweeper thread."""
from __future__ import annotations

import logging
import threading

from flask import Flask, current_app

from engine import Engine, ManualClock, SystemClock
from engine.schema import upgrade_database

from .extensions import db

log = logging.getLogger(__name__)


def init_engine(app: Flask) -> Engine:
    """Create the app's :class:`Engine` (a test may pass ``ENGINE_CLOCK``)."""
    from workflows.league_engine import build_league_engine
    engine = build_league_engine(clock=app.config.get("ENGINE_CLOCK") or SystemClock(),
                                 cache_size=app.config.get("ENGINE_CACHE_SIZE", 2000))
    app.extensions["lianqing_engine"] = engine
    return engine


def current_engine() -> Engine:
    """The engine of the current app."""
    return current_app.extensions["lianqing_engine"]


def migrate(app: Flask) -> None:
    """Bring the app's database to the current schema."""
    upgrade_database(app.config["SQLALCHEMY_DATABASE_URI"])


class TimerSweeper(threading.Thread):
    """Fires due timers every ``interval`` seconds until stopped (the embedded default backend)."""

    def __init__(self, app: Flask, interval: float):
        super().__init__(name="lianqing-timer-sweeper", daemon=True)
        self.app, self.interval = app, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        """Sweep until :meth:`stop`; an error is logged and the next sweep goes on."""
        while not self.stopped.wait(self.interval):
            with self.app.app_context():
                try:
                    fired = current_engine().run_due_timers(db.session)
                    if fired:
                        log.info("timer sweeper fired %d instance(s)", fired)
                except Exception:  # keep sweeping; the failing instance is logged
                    log.exception("timer sweep failed")
                    db.session.rollback()
                finally:
                    db.session.remove()

    def stop(self) -> None:
        """Ask the thread to end after its current sweep."""
        self.stopped.set()


__all__ = ["init_engine", "current_engine", "migrate", "TimerSweeper", "ManualClock"]
