"""The one clock seam of the engine.

SpiffWorkflow reads the wall clock itself (``datetime.now(timezone.utc)`` in its timer module)
and has no hook for it.  We install, once, a ``datetime`` subclass into that module whose
``now()`` asks the clock that is active in the current context; the engine activates its own
clock around every piece of SpiffWorkflow work.  Tests hand the engine a :class:`ManualClock`
and jump it forward instead of sleeping.
"""
from __future__ import annotations

import contextlib
import contextvars
import threading
from datetime import datetime, timedelta, timezone
from typing import Iterator, Protocol

from SpiffWorkflow.bpmn.specs.event_definitions import timer as _spiff_timer


class Clock(Protocol):
    """Anything that tells the current time as an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real time."""

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(timezone.utc)


class ManualClock:
    """A clock that only moves when told to; for tests and simulations."""

    def __init__(self, start: datetime | None = None):
        self._now = start or datetime(2026, 5, 1, 0, 0, tzinfo=timezone.utc)
        if self._now.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """Return the clock's current time."""
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by ``delta`` and return the new time."""
        with self._lock:
            self._now += delta
            return self._now

    def set(self, moment: datetime) -> None:
        """Put the clock at ``moment`` (aware)."""
        with self._lock:
            self._now = moment


_active_clock: contextvars.ContextVar[Clock | None] = contextvars.ContextVar("lianqing_clock", default=None)


class _ClockedDatetime(datetime):
    """``datetime`` whose ``now()`` reads the active engine clock when there is one."""

    @classmethod
    def now(cls, tz=None):  # noqa: D102 - mirrors datetime.now
        clock = _active_clock.get()
        if clock is None:
            return datetime.now(tz)
        moment = clock.now()
        return moment.astimezone(tz) if tz is not None else moment.astimezone().replace(tzinfo=None)


_spiff_timer.datetime = _ClockedDatetime


@contextlib.contextmanager
def clock_in_effect(clock: Clock) -> Iterator[None]:
    """Make SpiffWorkflow's timers read ``clock`` for the duration of the block."""
    token = _active_clock.set(clock)
    try:
        yield
    finally:
        _active_clock.reset(token)


def utc(moment: datetime) -> datetime:
    """Return ``moment`` as an aware UTC datetime (naive values are taken as UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)
