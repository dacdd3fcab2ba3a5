"""The README's Python example runs as written (so the README stays current)."""
from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_engine_example_runs(tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    code = re.search(r"## The engine from Python\n\n```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(ROOT)
    code = code.replace("sqlite:///demo.db", f"sqlite:///{tmp_path / 'demo.db'}")
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - our own README
    done = scope["done"]
    assert done.completed_by == "张伟" and len(done.next_task_ids) == 1
    assert os.path.exists(tmp_path / "demo.db")
