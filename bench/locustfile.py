"""What one cadre does in the load test (issue 9): sign in, list "my tasks", open a task, complete it.

``bench/load_test.py`` builds the database, starts gunicorn and runs this file as a script
(:func:`run_headless`, locust from Python, in its own process: locust's gevent must patch the
standard library before anything else is imported), handing it a JSON file of settings; the
results come back as JSON.  It can also run under locust's own command line against a server
whose cadres have a password::

    LIANQING_LOAD_ACCOUNTS=accounts.json .venv/bin/locust -f bench/locustfile.py --host http://127.0.0.1:8766

``accounts.json`` is a list of ``[username, password]``; each user signs in as the next one.
Every request goes through the pages a person uses (``/login``, ``/``, ``/tasks/<id>``, its form),
with the CSRF token read from the page, so the measured path is the browser's.
"""
from __future__ import annotations

from locust import FastHttpUser, between, constant, task  # first: locust patches the standard library

import html  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from urllib.parse import urlencode  # noqa: E402

import gevent  # noqa: E402
from locust.env import Environment  # noqa: E402

# Valid answers for the cadre forms of bpmn/ the load test hands out (congress_study's report and
# activity_record's record); the page says which of these the form has.
FORM_VALUES = {
    "format": "league_lecture", "kind": "league_lecture", "topic": "学习党的十九大精神", "date": "2026-05-20",
    "place": "市南区团委会议室", "youth_count": "30", "description": "讲了一次主题团课，青年们踊跃发言并提出问题。",
    "evidence": "签到表.jpg\n现场照片.jpg",
}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TASK_LINK = re.compile(r'href="/tasks/(\d+)"')
COMPLETE_FORM = re.compile(r'<form method="post" action="/tasks/\d+/complete".*?</form>', re.S)
FIELD = re.compile(r'<(input|select|textarea)\b[^>]*\bname="([^"]+)"[^>]*>')
FILE_FIELD = re.compile(r'<input\b[^>]*\btype="file"[^>]*\bname="([^"]+)"'
                        r'|<input\b[^>]*\bname="([^"]+)"[^>]*\btype="file"')


def evidence_photo() -> tuple[bytes, str, str]:
    """A small whole photo for an evidence field (the server decodes it): a 320×240 JPEG, or a PDF without Pillow."""
    try:
        from io import BytesIO

        from PIL import Image
    except ImportError:
        return b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n", "application/pdf", "evidence.pdf"
    image = Image.linear_gradient("L").resize((320, 240)).convert("RGB")
    buffer = BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return buffer.getvalue(), "image/jpeg", "evidence.jpg"


EVIDENCE_FILE = evidence_photo()


def accounts_from_environment() -> list[tuple[str, str]]:
    """``[(username, password), ...]`` from the JSON file named by ``LIANQING_LOAD_ACCOUNTS`` (or none)."""
    path = os.environ.get("LIANQING_LOAD_ACCOUNTS")
    if not path:
        return []
    with open(path, encoding="utf-8") as handle:
        return [tuple(pair) for pair in json.load(handle)]


def multipart(fields: list[tuple[str, str]], files: list[str]) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body with ``fields`` and the evidence photo for each name in ``files``."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
                     + value.encode() + b"\r\n")
    content, kind, filename = EVIDENCE_FILE
    for name in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                     f"Content-Type: {kind}\r\n\r\n".encode() + content + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


class CadreUser(FastHttpUser):
    """One cadre working through their inbox; what the server acknowledged is kept for the check.

    ``accounts`` is handed out one per user; ``completed`` collects ``(username, task id)`` of every
    completion answered with the redirect that follows success.
    """

    wait_time = between(5, 15)  # a brisk person; bench/load_test.py sets it from --think
    accounts: list[tuple[str, str]] = []
    completed: list[tuple[str, int]] = []
    exhausted: set[str] = set()  # users whose inbox ran empty
    signed_in: list[str] = []  # users past their sign-in (answered either way): the ramp-up is over when all are

    def on_start(self) -> None:
        """Take the next account and sign in through the login page."""
        if not self.accounts:
            self.accounts.extend(accounts_from_environment())
        self.username, password = self.accounts.pop(0)
        page = self.client.get("/login", name="GET /login")
        token = CSRF.search(page.text or "")
        with self.client.post("/login", name="POST /login", allow_redirects=False, catch_response=True,
                              data=urlencode({"csrf_token": token.group(1) if token else "", "next": "",
                                              "username": self.username, "password": password}),
                              headers={"Content-Type": "application/x-www-form-urlencoded"}) as response:
            if response.status_code not in (302, 303):
                response.failure(f"sign-in of {self.username} answered {response.status_code}")
        self.signed_in.append(self.username)

    @task
    def work_one_task(self) -> None:
        """List my tasks, open the most urgent one, complete it with valid form data."""
        with self.client.get("/", name="GET / (my tasks)", catch_response=True) as listing:
            if listing.status_code != 200 or "/login" in (listing.url or ""):
                listing.failure(f"inbox answered {listing.status_code}")
                return
            ids = TASK_LINK.findall(listing.text or "")
        if not ids:
            self.exhausted.add(self.username)
            return
        task_id = int(ids[0])
        with self.client.get(f"/tasks/{task_id}", name="GET /tasks/<id>", catch_response=True) as page:
            form = COMPLETE_FORM.search(page.text or "") if page.status_code == 200 else None
            if form is None:
                page.failure(f"task {task_id}: {page.status_code}, no completion form")
                return
        self._complete(task_id, form.group(0))

    def _complete(self, task_id: int, form: str) -> None:
        token = CSRF.search(form)
        names = [name for _tag, name in FIELD.findall(form) if name != "csrf_token"]
        files = [a or b for a, b in FILE_FIELD.findall(form)]
        fields = [("csrf_token", html.unescape(token.group(1)) if token else "")]
        fields += [(name, FORM_VALUES[name]) for name in dict.fromkeys(names)
                   if name in FORM_VALUES and name not in files]
        if files:
            body, content_type = multipart(fields, files)
        else:
            body, content_type = urlencode(fields).encode(), "application/x-www-form-urlencoded"
        with self.client.post(f"/tasks/{task_id}/complete", name="POST /tasks/<id>/complete", data=body,
                              headers={"Content-Type": content_type}, allow_redirects=False,
                              catch_response=True) as response:
            location = response.headers.get("Location", "") if response.headers else ""
            if response.status_code in (302, 303) and "/login" not in location:
                self.completed.append((self.username, task_id))
            else:
                messages = re.findall(r'class="(?:error|field-error)"[^>]*>([^<]+)', response.text or "")
                response.failure(f"{response.status_code} {' '.join(messages)[:300]}")


# -------------------------------------------------------------------------- running from Python

def percentile(values: list[float], share: float) -> float:
    """The ``share`` percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def run_headless(host: str, accounts: list[tuple[str, str]], users: int, spawn_rate: float, settle: float,
                 duration: float, think: tuple[float, float]) -> dict:
    """Spawn ``users`` cadres, wait until all signed in and ``settle`` more seconds, measure ``duration`` seconds.

    Each request kind: count, failures, per second, median, p95, p99, max (ms, from every response
    of the measured window, not locust's rounded buckets); completions per second in the window;
    every completion the server acknowledged (ramp-up included), for the database check.
    """
    CadreUser.accounts, CadreUser.completed, CadreUser.exhausted, CadreUser.signed_in = list(accounts), [], set(), []
    CadreUser.wait_time = constant(0) if think[1] == 0 else between(*think)
    # stop_timeout: at the end each user finishes the task it is in, so no completion is cut off mid-request
    # (the server would complete it, unacknowledged, and the database check would count one more).
    environment = Environment(user_classes=[CadreUser], host=host, stop_timeout=120)
    window = {"open": False}
    samples: dict[str, list[float]] = defaultdict(list)
    failures: Counter = Counter()
    errors: Counter = Counter()
    slowest: list[tuple[float, str, str]] = []

    def on_request(request_type, name, response_time, exception=None, url="", **_more):
        if not window["open"]:
            return
        samples[name].append(response_time)
        if exception is not None:
            failures[name] += 1
            errors[f"{name}: {str(exception)[:160]}"] += 1
        slowest.append((response_time, name, url))
        if len(slowest) > 200:
            slowest.sort(reverse=True)
            del slowest[20:]

    environment.events.request.add_listener(on_request)
    runner = environment.create_local_runner()
    runner.start(users, spawn_rate=spawn_rate)
    print(f"  ramp-up: {users} users at {spawn_rate:g}/s, until all have signed in, then {settle:g} s to settle",
          flush=True)
    ramp_began = time.monotonic()
    while len(CadreUser.signed_in) < users and time.monotonic() - ramp_began < 600:
        gevent.sleep(0.5)
    ramp_seconds = time.monotonic() - ramp_began
    gevent.sleep(settle)
    load_before = os.getloadavg()
    window["open"] = True
    opened, done_before, began = time.monotonic(), len(CadreUser.completed), time.time()
    print(f"  measuring {duration:g} s", flush=True)
    gevent.sleep(duration)
    window["open"] = False
    seconds = time.monotonic() - opened
    done_in_window = len(CadreUser.completed) - done_before
    load_after = os.getloadavg()
    runner.stop()
    runner.quit()
    runner.greenlet.join(timeout=60)
    slowest.sort(reverse=True)
    kinds = {name: {"count": len(values), "failures": failures[name], "per_s": round(len(values) / seconds, 2),
                    "median_ms": round(statistics.median(values), 1), "p95_ms": round(percentile(values, 0.95), 1),
                    "p99_ms": round(percentile(values, 0.99), 1), "max_ms": round(max(values), 1)}
             for name, values in sorted(samples.items())}
    return {"seconds": round(seconds, 1), "window": [began, began + seconds], "ramp_up_s": round(ramp_seconds, 1),
            "signed_in": len(CadreUser.signed_in), "kinds": kinds,
            "completions_per_s": round(done_in_window / seconds, 2), "completions_in_window": done_in_window,
            "completed": list(CadreUser.completed), "exhausted_users": sorted(CadreUser.exhausted),
            "errors": dict(errors.most_common(10)),
            "slowest": [{"ms": round(ms, 1), "request": name, "url": url} for ms, name, url in slowest[:10]],
            "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in load_after]}


if __name__ == "__main__":
    # python bench/locustfile.py SETTINGS.json RESULTS.json (as bench/load_test.py runs it)
    with open(sys.argv[1], encoding="utf-8") as handle:
        settings = json.load(handle)
    settings["accounts"] = [tuple(pair) for pair in settings["accounts"]]
    settings["think"] = tuple(settings["think"])
    results = run_headless(**settings)
    with open(sys.argv[2], "w", encoding="utf-8") as handle:
        json.dump(results, handle, ensure_ascii=False)
