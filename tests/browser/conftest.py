"""The browser tests' harness: a live server on a fresh database, Debian's Chromium, two viewports, screenshots.

Every journey runs at a phone viewport (375×812, touch) and a desktop one (1280×800) on SQLite, and
at the desktop one on PostgreSQL too when ``TEST_DATABASE_URL`` is set.  Each test gets its own
server: the app of :func:`web.create_app` on a fresh migrated database with every process of
``bpmn/`` deployed and the league of ``tests/league.py``, served by werkzeug on a free port, with a
hand-moved clock (so the pages say "5月1日" on every run).

Chromium is Debian's (``/usr/bin/chromium``, or ``LIANQING_CHROMIUM``) driven by Playwright for
Python; no browser is ever downloaded.  Without it the tests skip with the reason (fail under
``LIANQING_REQUIRE_SERVICES=1``).  With ``LIANQING_SCREENSHOTS=1`` each visited page is saved as
``docs/screenshots/<journey>-<step>-<viewport>.png``.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from engine import ManualClock
from tests.conftest import TESTS_DIR, require_service
from tests.league import build_league
from web import create_app
from web.extensions import db

REPO_ROOT = TESTS_DIR.parent
BPMN_DIR = REPO_ROOT / "bpmn"
SCREENSHOT_DIR = REPO_ROOT / "docs" / "screenshots"
CHROMIUM = Path(os.environ.get("LIANQING_CHROMIUM", "/usr/bin/chromium"))
TIMEOUT_MS = 15_000  # the longest any page condition may take to come true (a slow CI machine)

VIEWPORTS = {
    "phone": {"viewport": {"width": 375, "height": 812}, "is_mobile": True, "has_touch": True},
    "desktop": {"viewport": {"width": 1280, "height": 800}},
}
# (viewport, database): both viewports on SQLite; PostgreSQL (when given) at the desktop one.
SETTINGS = [("phone", "sqlite"), ("desktop", "sqlite"), ("desktop", "postgresql")]
in_every_setting = pytest.mark.parametrize(("viewport", "database_url"), SETTINGS, indirect=["database_url"],
                                           ids=[f"{v}-{d}" for v, d in SETTINGS])


# ------------------------------------------------------------------------------------ server

@dataclass
class LiveServer:
    """The app served on ``url``; ``clock`` is the server's clock, moved by the test."""

    url: str
    app: object
    clock: ManualClock

    def run(self, work: Callable):
        """Call ``work(session, engine)`` in the app's context and commit: what happens off-screen."""
        with self.app.app_context():
            result = work(db.session, self.app.extensions["lianqing_engine"])
            db.session.commit()
            return result


class _QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler without its own request lines (the app's access log already has them)."""

    def log_request(self, *args, **kwargs) -> None:
        pass


@pytest.fixture
def live_server(database_url, clock, tmp_path) -> Iterator[LiveServer]:
    """A fresh database with the processes and the league, served on a free port for this test only."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "ENGINE_CLOCK": clock, "BPMN_DIR": str(BPMN_DIR),
                      "START_SWEEPER": False, "SECRET_KEY": "browser-tests", "LOG_FORMAT": "text",
                      "EVIDENCE_DIR": str(tmp_path / "evidence")})
    with app.app_context():
        engine = app.extensions["lianqing_engine"]
        for path in sorted(BPMN_DIR.glob("*.bpmn")):
            engine.deploy_file(db.session, path)
        build_league(db.session, clock.now())
        db.session.commit()
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{server.server_port}", app, clock)
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
        queue = app.extensions["lianqing_jobs"]
        if hasattr(queue, "stop"):
            queue.stop()
        with app.app_context():  # let the database fixture drop its schema without waiting on our pool
            db.engine.dispose()


# ----------------------------------------------------------------------------------- browser

@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, headless, driven by Playwright (one browser for the whole run)."""
    if not CHROMIUM.is_file() or not os.access(CHROMIUM, os.X_OK):
        require_service("chromium", f"{CHROMIUM} not found: `apt-get install chromium fonts-noto-cjk` (make test "
                                    "does it when it can), or point LIANQING_CHROMIUM at a Chromium binary")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_service("chromium", "the Python package playwright is missing: pip install -e '.[test]'")
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
    except Exception as exc:  # noqa: BLE001 - a browser that cannot start is a missing service
        playwright.stop()
        require_service("chromium", f"{CHROMIUM} would not start: {exc}")
    yield chromium
    chromium.close()
    playwright.stop()


@dataclass
class Browsing:
    """Opens pages for the people of a journey, each in their own browser context (their own phone or PC).

    Records what no page may do: raise a JavaScript error, log a console error, or fetch anything
    from another host (every asset is served locally).
    """

    browser: object
    server: LiveServer
    viewport: str
    contexts: list = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def new_page(self):
        """A new page in a new context at the test's viewport, on the live server."""
        context = self.browser.new_context(base_url=self.server.url, locale="zh-CN", timezone_id="Asia/Shanghai",
                                           **VIEWPORTS[self.viewport])
        context.set_default_timeout(TIMEOUT_MS)
        context.on("request", self._check_request)
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: self.problems.append(f"JavaScript error on {page.url}: {error}"))
        page.on("console", lambda message: self._check_console(page, message))
        context.on("response", self._check_response)
        return page

    def _check_request(self, request) -> None:
        if not request.url.startswith((self.server.url + "/", "data:", "blob:", "about:")):
            self.problems.append(f"request to another host: {request.url}")

    def _check_response(self, response) -> None:
        # A page may answer 4xx (a form with errors is 422); an asset or a script's fetch may not.
        if response.status >= 400 and response.request.resource_type != "document" \
                and not response.url.endswith("/favicon.ico"):
            self.problems.append(f"{response.status} for {response.request.resource_type} {response.url}")

    def _check_console(self, page, message) -> None:
        # Chromium also logs every 4xx as "Failed to load resource"; _check_response judges those.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.problems.append(f"console error on {page.url}: {message.text}")

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def browsing(browser, live_server, viewport) -> Iterator[Browsing]:
    """Pages for the journey's people; fails the test if a page broke a rule of :class:`Browsing`."""
    from playwright.sync_api import expect
    expect.set_options(timeout=TIMEOUT_MS)
    session = Browsing(browser, live_server, viewport)
    try:
        yield session
    finally:
        session.close()
    assert not session.problems, "\n".join(session.problems)


# ------------------------------------------------------------------------------- screenshots

@dataclass
class Screenshots:
    """Saves pages as ``docs/screenshots/<journey>-<step>-<viewport>.png`` when ``enabled``."""

    journey: str
    viewport: str
    enabled: bool

    def __call__(self, page, step: str) -> None:
        """Save the whole of ``page`` (after its fonts have loaded) as this journey's ``step``."""
        if not self.enabled:
            return
        page.evaluate("document.fonts.ready.then(() => true)")
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOT_DIR / f"{self.journey}-{step}-{self.viewport}.png", full_page=True,
                        animations="disabled", caret="hide")


@pytest.fixture
def screenshots(viewport, request) -> Callable[[str], Screenshots]:
    """``screenshots("journey")`` gives the journey's :class:`Screenshots` (saving on SQLite runs only)."""
    enabled = os.environ.get("LIANQING_SCREENSHOTS") == "1" and request.node.callspec.params.get(
        "database_url") == "sqlite"
    return lambda journey: Screenshots(journey, viewport, enabled)
