"""Which processes a campaign can launch, what parameters each takes, and the start data it builds.

Each launchable process declares the targets it is started for (每名团干部 / 每个团的领导机关 /
每个团市委 / 每个县级团委), a JSON Schema of its parameters (deadlines, themes) and a function that
turns one target and the campaign's parameters into the instance's start data — the same data
the tests of each process start it with.

Parameters arrive as text from a form or the command line.  Moments may be given as a date
("2026-11-30", meaning the end of that day), a local time ("2026-11-30T18:00") or a full ISO
time; local means China time (+08:00), the notice's own.  A parameter the schema marks
``"x-limit": "deadline"`` or ``"x-limit": "count"`` is one a lower level may not raise above a
parent campaign (不能层层加码).
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator

from engine.errors import FieldError, FormInvalid, NotFound

CHINA = timezone(timedelta(hours=8))
TARGET_KIND_NAMES = {"cadre": "每名团干部", "organ": "每个团的领导机关", "city": "每个团市委（地市级单位）",
                     "county": "每个县级团委"}
_MOMENT_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")


@dataclass(frozen=True)
class LaunchTarget:
    """One target of a campaign as a process's start data needs it."""

    key: str
    organisation_code: str
    organisation_name: str
    username: str | None = None  # the cadre's account, for cadre targets
    cadre_name: str | None = None


@dataclass(frozen=True)
class CampaignProcess:
    """A process a campaign can launch: its targets, its parameters, and how one instance starts."""

    process_id: str
    name: str
    target_kinds: tuple[str, ...]
    schema: dict[str, Any]
    defaults: Callable[[dict[str, Any]], dict[str, Any]]
    order: tuple[tuple[str, str], ...]  # (earlier, later) pairs of parameters that must come in that order
    start_data: Callable[[LaunchTarget, dict[str, Any]], dict[str, Any]]

    def parameter_titles(self) -> dict[str, str]:
        """Each parameter's Chinese title, in the schema's order."""
        return {name: spec.get("title", name) for name, spec in self.schema["properties"].items()}

    def limits(self) -> dict[str, str]:
        """The parameters a lower level may not raise: name → "deadline" or "count"."""
        return {name: spec["x-limit"] for name, spec in self.schema["properties"].items() if "x-limit" in spec}


def _moment(title: str, description: str, limit: bool = True) -> dict[str, Any]:
    spec = {"type": "string", "title": title, "description": description, "format": "date-time",
            "pattern": _MOMENT_TEXT.pattern}
    if limit:
        spec["x-limit"] = "deadline"
    return spec


def _day(title: str, description: str) -> dict[str, Any]:
    return {"type": "string", "title": title, "description": description, "format": "date",
            "pattern": r"^\d{4}-\d{2}-\d{2}$"}


THEME = {"type": "string", "title": "主题", "description": "活动主题（可选），随流程数据下发", "maxLength": 200}


def _schema(required: list[str], **properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties, "additionalProperties": False}


def _before(moment: str, **delta: float) -> str:
    return (datetime.fromisoformat(moment) - timedelta(**delta)).isoformat()


def _day_after(day: str, at: time) -> str:
    return datetime.combine(date.fromisoformat(day) + timedelta(days=1), at, CHINA).isoformat()


def _with_theme(data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    if params.get("theme"):
        data["theme"] = params["theme"]
    return data


def _cadre_deadline(target: LaunchTarget, params: dict[str, Any]) -> dict[str, Any]:
    return _with_theme({"cadre_assignee": target.username, "due_at": params["due_at"],
                        "remind_at": params["remind_at"]}, params)


PROCESSES: dict[str, CampaignProcess] = {p.process_id: p for p in (
    CampaignProcess(
        "congress_study", "十九大精神宣讲", ("cadre",),
        _schema(["due_at"], due_at=_moment("截止时间", "团干部记录宣讲的截止时间"),
                remind_at=_moment("提醒时间", "截止前提醒的时间（默认截止前3天）", limit=False), theme=THEME),
        lambda p: {"remind_at": _before(p["due_at"], days=3)}, (("remind_at", "due_at"),), _cadre_deadline),
    CampaignProcess(
        "service_month", "集中服务青年月", ("cadre",),
        _schema(["due_at"], due_at=_moment("截止时间", "团干部记录服务的截止时间"),
                remind_at=_moment("提醒时间", "截止前提醒的时间（默认截止前7天）", limit=False), theme=THEME),
        lambda p: {"remind_at": _before(p["due_at"], days=7)}, (("remind_at", "due_at"),), _cadre_deadline),
    CampaignProcess(
        "education_practice", "“一学一做”教育实践", ("cadre",),
        _schema(["choose_due", "close_at"],
                choose_due=_moment("选择联系点截止时间", "5月上旬选定联系指导的基层团委和团支部的截止时间"),
                choose_remind=_moment("选择提醒时间", "选择联系点前提醒的时间（默认截止前3天）", limit=False),
                close_at=_moment("结束时间", "教育实践结束、未完成事项记为未完成的时间"), theme=THEME),
        lambda p: {"choose_remind": _before(p["choose_due"], days=3)},
        (("choose_remind", "choose_due"), ("choose_due", "close_at")),
        lambda t, p: _with_theme({"cadre_assignee": t.username, "choose_remind": p["choose_remind"],
                                  "choose_due": p["choose_due"], "close_at": p["close_at"]}, p)),
    CampaignProcess(
        "five_ones_period", "“五个一”周期考核", ("cadre", "organ"),
        _schema(["period_start", "period_end"],
                period_start=_day("周期开始日", "考核周期的第一天"), period_end=_day("周期结束日", "考核周期的最后一天"),
                check_at=_moment("检查时间", "周期结束后检查是否达标的时间（默认结束次日9时）")),
        lambda p: {"check_at": _day_after(p["period_end"], time(9))},
        (("period_start", "period_end"), ("period_end", "check_at")),
        lambda t, p: {"cadre_assignee": t.username, "organisation": t.organisation_code,
                      "period_start": p["period_start"], "period_end": p["period_end"], "check_at": p["check_at"]}),
    CampaignProcess(
        "open_organ_day", "团的领导机关开放日", ("organ",),
        _schema(["quarter_end"], quarter_end=_moment("季度截止时间", "本季度举办开放日的截止时间"),
                remind_at=_moment("提醒时间", "季度末前提醒的时间（默认截止前10天）", limit=False), theme=THEME),
        lambda p: {"remind_at": _before(p["quarter_end"], days=10)}, (("remind_at", "quarter_end"),),
        lambda t, p: _with_theme({"organisation": t.organisation_code, "quarter_end": p["quarter_end"],
                                  "remind_at": p["remind_at"]}, p)),
    CampaignProcess(
        "quarterly_report", "“1+100”季度交流会与“五个一”季度报告", ("city", "organ"),
        _schema(["report_due", "session_due"],
                report_due=_moment("报告截止时间", "季度最后一个月20日前报送团省委"),
                remind_at=_moment("提醒时间", "报告截止前提醒的时间（默认截止前5天）", limit=False),
                session_due=_moment("交流会截止时间", "本季度召开“1+100”经验交流会的截止时间")),
        lambda p: {"remind_at": _before(p["report_due"], days=5)}, (("remind_at", "report_due"),),
        lambda t, p: {"organisation": t.organisation_code, "report_due": p["report_due"],
                      "remind_at": p["remind_at"], "session_due": p["session_due"]}),
    CampaignProcess(
        "youth_story", "“最美青春故事”分享", ("county",),
        _schema(["county_due", "city_due", "province_due"],
                county_due=_moment("县级推荐截止时间", "县级团委评选上报团市委的截止时间"),
                city_due=_moment("市级推荐截止时间", "团市委评选上报团省委的截止时间"),
                province_due=_moment("省级评选截止时间", "团省委评选发布的截止时间")),
        lambda p: {}, (("county_due", "city_due"), ("city_due", "province_due")),
        lambda t, p: {"organisation": t.organisation_code, "county_due": p["county_due"],
                      "city_due": p["city_due"], "province_due": p["province_due"]}),
)}


def campaign_process(process_id: str) -> CampaignProcess:
    """The launchable process ``process_id``, or :class:`NotFound`."""
    process = PROCESSES.get(process_id)
    if process is None:
        raise NotFound(f"流程「{process_id}」不能作为集中活动发起 / process {process_id!r} cannot be launched as a "
                       f"campaign; one of {', '.join(PROCESSES)}")
    return process


def parse_moment(text: str, end_of_day: bool = True) -> datetime:
    """A moment from text: a date means the end of that day (or its start), a time without a zone is China time.

    Raises ``ValueError`` for text that is neither.
    """
    text = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return datetime.combine(date.fromisoformat(text), time(23, 59, 59) if end_of_day else time(0), CHINA)
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=CHINA) if moment.tzinfo is None else moment


def _as_moment_text(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=CHINA)).isoformat(timespec="seconds")
    if not isinstance(value, str) or not value.strip():
        return value
    try:
        return parse_moment(value).isoformat(timespec="seconds")
    except ValueError:
        return value  # the schema's pattern reports it against the field


def _coerce(spec: dict[str, Any], value: Any) -> Any:
    if spec.get("format") == "date-time":
        return _as_moment_text(value)
    if spec.get("type") == "integer" and isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if spec.get("format") == "date" and isinstance(value, (date, datetime)):
        return value.isoformat()[:10]
    return value.strip() if isinstance(value, str) else value


@lru_cache(maxsize=32)
def _validator(schema_text: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_text))


def _field_message(spec: dict[str, Any], name: str, validator: str) -> str:
    title = spec.get("title", name)
    if validator == "required":
        return f"请填写{title} / {name} is required"
    if spec.get("format") == "date-time":
        return (f"{title}应为日期或时间，如 2026-11-30 或 2026-11-30T18:00 / {name} must be a date or time, "
                "e.g. 2026-11-30 or 2026-11-30T18:00")
    if spec.get("format") == "date":
        return f"{title}应为日期，如 2026-06-30 / {name} must be a date such as 2026-06-30"
    if validator == "maxLength":
        return f"{title}不能超过{spec['maxLength']}字 / {name} is longer than {spec['maxLength']} characters"
    if validator == "minimum":
        return f"{title}不能小于{spec['minimum']} / {name} must be at least {spec['minimum']}"
    if spec.get("type") == "integer":
        return f"{title}应为整数 / {name} must be a whole number"
    return f"{title}填写有误 / {name} is not valid"


def normalise_parameters(process: CampaignProcess, raw: dict[str, Any]) -> dict[str, Any]:
    """The campaign parameters, checked and completed; :class:`FormInvalid` names each bad field.

    Empty values are left out, moments become full ISO times, defaults (reminders) are filled in,
    and parameters that must come in order (a reminder before its deadline) are checked.
    """
    properties = process.schema["properties"]
    params = {name: _coerce(properties.get(name, {}), value) for name, value in raw.items()
              if value is not None and value != ""}
    errors: list[FieldError] = []
    for error in _validator(json.dumps(process.schema, sort_keys=True)).iter_errors(params):
        if error.validator == "required":
            errors += [FieldError(n, _field_message(properties[n], n, "required"))
                       for n in error.validator_value if n not in params]
        elif error.validator == "additionalProperties":
            errors += [FieldError(n, f"「{process.name}」没有参数 {n} / {process.process_id} takes no parameter "
                                     f"{n!r}; one of {', '.join(properties)}") for n in params if n not in properties]
        else:
            name = str(error.absolute_path[0]) if error.absolute_path else ""
            errors.append(FieldError(name, _field_message(properties.get(name, {}), name, error.validator)))
    for name, value in params.items():  # the pattern lets "2026-13-01" through; the calendar does not
        if properties.get(name, {}).get("format") == "date" and isinstance(value, str):
            try:
                date.fromisoformat(value)
            except ValueError:
                errors.append(FieldError(name, _field_message(properties[name], name, "format")))
    if errors:
        raise FormInvalid(_unique(errors))
    for name, value in process.defaults(params).items():
        params.setdefault(name, value)
    titles = process.parameter_titles()
    for earlier, later in process.order:
        if earlier in params and later in params and _comparable(params[earlier]) >= _comparable(params[later]):
            errors.append(FieldError(earlier, f"{titles[earlier]}应早于{titles[later]} / {earlier} must come "
                                              f"before {later}"))
    if errors:
        raise FormInvalid(errors)
    return params


def _comparable(value: str) -> datetime:
    """Dates and moments on one scale (a date is its first instant, China time)."""
    if len(value) == 10:
        return datetime.combine(date.fromisoformat(value), time(0), CHINA)
    return datetime.fromisoformat(value)


def _unique(errors: list[FieldError]) -> list[FieldError]:
    seen, unique = set(), []
    for error in errors:
        if error.field not in seen:
            seen.add(error.field)
            unique.append(error)
    return sorted(unique, key=lambda e: e.field)


def raised_limits(process: CampaignProcess, parent_params: dict[str, Any], params: dict[str, Any],
                  limits: dict[str, str] | None = None) -> list[FieldError]:
    """The parameters in which ``params`` raises what a parent campaign set (a later deadline, a higher count).

    Only parameters both campaigns set are compared; the parent's process may differ (the province
    asks each city for a report, a city launches its own campaign to its cadres within it).
    """
    limits = process.limits() if limits is None else limits
    titles = process.parameter_titles()
    errors = []
    for name, kind in limits.items():
        if name not in params or name not in parent_params:
            continue
        mine, theirs = params[name], parent_params[name]
        title = titles.get(name, name)
        if kind == "deadline" and _comparable(mine) > _comparable(theirs):
            errors.append(FieldError(name, f"{title}不能晚于上级活动规定的 {theirs}（不能层层加码）/ {name} may not be "
                                           f"later than the parent campaign's {theirs}"))
        elif kind == "count" and mine > theirs:
            errors.append(FieldError(name, f"{title}不能高于上级活动规定的 {theirs}（不能层层加码）/ {name} may not be "
                                           f"higher than the parent campaign's {theirs}"))
    return errors
