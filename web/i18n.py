"""The web UI's languages: Chinese (``zh_Hans_CN``, the default and the language of every msgid) and English.

- Which locale a request uses: the person's explicit choice (the header's switch posts to
  ``/language/<code>``), kept in the session and in a long-lived cookie so the sign-in page
  remembers it; otherwise Chinese.  The browser's Accept-Language is deliberately not followed.
- Times and days in the locale's format, in the configured zone (``LIANQING_TIMEZONE``, Beijing time).
- :func:`localized`: the half of a bilingual domain message (``"中文 / English"``) that matches the locale.
- :func:`term`: a label the domain names in Chinese (a role, a status; ``web/domain_terms.py`` lists them
  for extraction), or what a BPMN file or its form says (a step's name, its instructions, a field's label:
  ``web/i18n_extract.py`` extracts them), or a sentence the domain composes (a
  :class:`workflows.phrases.Phrase`: a wish's status, a bulletin's title), translated when the catalogue has it.
- :func:`wording`: the request's language as the domain's :class:`~workflows.phrases.Wording`, for the
  functions that word their own output (the charts).
"""
from __future__ import annotations

import re
from datetime import date, datetime

from flask import Blueprint, Flask, abort, current_app, has_request_context, redirect, request, session, url_for
from flask_babel import Babel, format_date, format_datetime, get_locale, gettext, to_user_timezone

from workflows.phrases import Month, Phrase, Wording

DEFAULT_LOCALE = "zh_Hans_CN"
DEFAULT_TIMEZONE = "Asia/Shanghai"
LANGUAGES = {"zh_Hans_CN": "中文", "en": "English"}  # each named in its own language, never translated
HTML_LANG = {"zh_Hans_CN": "zh-CN", "en": "en"}
SESSION_KEY = "locale"
COOKIE_NAME = "lianqing_locale"
COOKIE_MAX_AGE = 365 * 24 * 3600

# Babel (CLDR) patterns of each style; Chinese keeps the numeric forms people there read.
PATTERNS = {
    "zh_Hans_CN": {"datetime": "yyyy-MM-dd HH:mm", "seconds": "yyyy-MM-dd HH:mm:ss", "date": "yyyy-MM-dd",
                   "month_day": "MM-dd", "day": "M月d日", "month": "y年M月"},
    "en": {"datetime": "d MMM yyyy, HH:mm", "seconds": "d MMM yyyy, HH:mm:ss", "date": "d MMM yyyy",
           "month_day": "d MMM", "day": "d MMM", "month": "MMMM y"},
}
_ISO_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)$")
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# " / " starts the English half when what follows is not Chinese (a Chinese " / " inside a name stays).
_HALVES = re.compile(r" / (?=[^\u3000-\u303f\u4e00-\u9fff\uff00-\uffef])")
_CHINESE = re.compile(r"[\u4e00-\u9fff]")

babel = Babel()
bp = Blueprint("i18n", __name__)


def chosen_locale() -> str:
    """The request's locale: the session's choice, else the cookie's, else Chinese."""
    if not has_request_context():
        return DEFAULT_LOCALE
    for candidate in (session.get(SESSION_KEY), request.cookies.get(COOKIE_NAME)):
        if candidate in LANGUAGES:
            return candidate
    return DEFAULT_LOCALE


def current_locale() -> str:
    """The code of the locale in use (a key of :data:`LANGUAGES`)."""
    code = str(get_locale() or DEFAULT_LOCALE)
    return code if code in LANGUAGES else DEFAULT_LOCALE


def _back() -> str:
    """Where the switch returns to: the page it was on (this site's paths only), else the inbox."""
    target = (request.form.get("next") or "").rstrip("?")
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("main.inbox")


@bp.post("/language/<code>")
def switch(code: str):
    """Use ``code`` from now on in this browser (session and a cookie kept a year), and go back."""
    if code not in LANGUAGES:
        abort(404)
    session[SESSION_KEY] = code
    response = redirect(_back())
    response.set_cookie(COOKIE_NAME, code, max_age=COOKIE_MAX_AGE, httponly=True, samesite="Lax",
                        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")))
    return response


def _halves(text: str) -> tuple[str, str] | None:
    match = _HALVES.search(text)
    if match is None or not _CHINESE.search(text[:match.start()]):
        return None
    return text[:match.start()].strip(), text[match.end():].strip()


def localized(message) -> str:
    """The half of a bilingual ``"中文 / English"`` message matching the locale; other text unchanged.

    Several bilingual messages joined by "；" (as the domain lists reasons) are each cut in half.
    """
    text = "" if message is None else str(message)
    english = current_locale() == "en"
    parts = [_halves(part) for part in text.split("；")]
    if len(parts) > 1 and all(parts):
        return ("; " if english else "；").join(part[english] for part in parts)
    whole = _halves(text)
    return text if whole is None else whole[english]


def term(text) -> str:
    """A label or a :class:`~workflows.phrases.Phrase` the domain gives in Chinese, or a text of a BPMN file or
    its form, in the request's language when the catalogue translates it (else as it is)."""
    if isinstance(text, Phrase):
        return text.render(wording())
    return gettext(text) if text else ("" if text is None else text)


def wording() -> Wording:
    """How the domain's phrases and charts read in the request's language: the catalogue, the locale's days."""
    return Wording(translate=gettext, day=_short_day, full_date=local_date, month=_month_text)


def _short_day(day: date | datetime) -> str:
    return local_date(day, "day")


def _month_text(month: Month) -> str:
    return format_date(month.first, _pattern("month"))


def _pattern(style: str) -> str:
    return PATTERNS[current_locale()].get(style) or PATTERNS[current_locale()]["datetime"]


def local_time(moment: datetime | None, style: str = "datetime") -> str:
    """A stored (UTC) time in the configured zone and the locale's format.

    ``style``: ``datetime``, ``seconds``, ``date`` or ``month_day``; a ``strftime`` pattern (with ``%``)
    is still accepted and applied in the configured zone.
    """
    if moment is None:
        return ""
    if "%" in style:
        return to_user_timezone(moment).strftime(style)
    return format_datetime(moment, _pattern(style))


def local_date(day: date | datetime | str | None, style: str = "date") -> str:
    """A calendar day in the locale's format (a datetime is first moved to the configured zone; an ISO
    ``YYYY-MM-DD`` text is read as a day; other text is shown as it is)."""
    if day is None:
        return ""
    if isinstance(day, datetime):
        return local_time(day, style)
    if isinstance(day, str):
        try:
            parsed = date.fromisoformat(day) if _ISO_DAY.match(day) else None
        except ValueError:
            parsed = None
        if parsed is None:
            return day
        day = parsed
    return format_date(day, _pattern(style))


def value_text(value):
    """A data value as people read it: ISO moments and days in the locale's format, anything else unchanged."""
    if isinstance(value, datetime):
        return local_time(value)
    if isinstance(value, date):
        return local_date(value)
    if isinstance(value, str) and _ISO_MOMENT.match(value):
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return local_time(moment) if moment.tzinfo is not None else value
    if isinstance(value, str) and _ISO_DAY.match(value):
        return local_date(value) or value
    return value


def _template_context() -> dict:
    code = current_locale()
    return {"current_locale": code, "html_lang": HTML_LANG[code],
            "other_languages": {key: name for key, name in LANGUAGES.items() if key != code}}


def init_app(app: Flask) -> None:
    """Install Flask-Babel (locale and zone), the language switch, and the template filters on ``app``."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LOCALE)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", DEFAULT_TIMEZONE)
    babel.init_app(app, locale_selector=chosen_locale)
    app.register_blueprint(bp)
    for name, function in (("local_time", local_time), ("local_date", local_date), ("value_text", value_text),
                           ("localized", localized), ("term", term)):
        app.add_template_filter(function, name)
    app.context_processor(_template_context)
