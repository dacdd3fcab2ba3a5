"""Pages and commands of the campaigns (filled in by its issue)."""
from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("campaigns", __name__)


def init_cli(app: Flask) -> None:
    """Register this module's `flask` commands."""
