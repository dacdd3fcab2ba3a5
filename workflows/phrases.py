"""Sentences the domain composes for people, kept as data: a Chinese template and the facts it holds.

A sentence such as "您的心愿在市南区团委心愿池，自5月3日起" is built from facts (a place, a day) that
another language words and orders differently.  So the domain returns a :class:`Phrase`: the template,
with ``%(name)s`` placeholders, and the values.  ``str(phrase)`` is the Chinese sentence (what the JSON
API, the CLI and the workbooks show); the web layer renders the same phrase in the request's language
with its own :class:`Wording` (``web.i18n.term``), the template being the msgid of its catalogues.

Templates are marked with :func:`N_` where they are written, so ``pybabel extract`` (babel.cfg, which
reads ``workflows/``) puts them in the catalogues; write whole sentences, never glued fragments, so a
translation can reorder them.  A value may be a day or a moment (the short day: "5月3日"), a
:class:`Month`, another phrase, a tuple of phrases (a list, joined with "；"), or plain text and numbers.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

BEIJING = timezone(timedelta(hours=8), "CST")


def N_(text: str) -> str:  # noqa: N802 - the marker name pybabel extracts by default
    """Mark ``text`` as a template for extraction; it is translated where it is shown."""
    return text


def day_text(moment: date | datetime) -> str:
    """A day as a youth reads it, in Beijing time: "5月3日"."""
    local = moment.astimezone(BEIJING) if isinstance(moment, datetime) else moment
    return f"{local.month}月{local.day}日"


@dataclass(frozen=True)
class Month:
    """A calendar month as a value of a phrase ("2026年5月")."""

    year: int
    month: int

    @property
    def first(self) -> date:
        """Its first day."""
        return date(self.year, self.month, 1)


def _chinese_date(moment: date | datetime) -> str:
    return (moment.astimezone(BEIJING) if isinstance(moment, datetime) else moment).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Wording:
    """How phrases are worded in one language: the template's translation and how days and months read.

    The default is the domain's own Chinese (templates as written, Beijing time).
    """

    translate: Callable[[str], str] = N_
    day: Callable[[date | datetime], str] = day_text              # short: "5月3日" / "3 May"
    full_date: Callable[[date | datetime], str] = _chinese_date   # full: "2026-05-03" / "3 May 2026"
    month: Callable[[Month], str] = lambda m: f"{m.year}年{m.month}月"

    def value(self, value: Any) -> Any:
        """A phrase's value as this wording writes it (numbers and text unchanged)."""
        if isinstance(value, Phrase):
            return value.render(self)
        if isinstance(value, tuple):
            return self.translate("；").join(str(self.value(item)) for item in value)
        if isinstance(value, Month):
            return self.month(value)
        if isinstance(value, (date, datetime)):
            return self.day(value)
        return "" if value is None else value

    def text(self, template: str, **values: Any) -> str:
        """``template`` (marked with :func:`N_`) translated, with ``values`` put in."""
        return Phrase(template, values).render(self)


@dataclass(frozen=True)
class Phrase:
    """A sentence for people: a Chinese template (marked with :func:`N_`) and its values."""

    template: str
    values: Mapping[str, Any] = field(default_factory=dict)

    def render(self, wording: Wording | None = None) -> str:
        """The sentence in ``wording`` (Chinese by default)."""
        wording = wording or CHINESE
        text = wording.translate(self.template)
        if not self.values:
            return text
        return text % {name: wording.value(value) for name, value in self.values.items()}

    def __str__(self) -> str:
        return self.render()

    def __hash__(self) -> int:
        return hash((self.template, tuple(sorted(self.values.items()))))


def phrase(template: str, **values: Any) -> Phrase:
    """A :class:`Phrase` of ``template`` (marked with :func:`N_` by the caller) and ``values``."""
    return Phrase(template, values)


CHINESE = Wording()
