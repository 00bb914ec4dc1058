"""Log lines written to the host's log, inside the span of the current reconcile."""

from __future__ import annotations

import enum
from typing import Protocol

__all__ = ["Level", "LogSink", "Logger"]


class Level(enum.IntEnum):
    """How important a log line is."""

    TRACE = 0
    DEBUG = 1
    INFO = 2
    WARN = 3
    ERROR = 4


class LogSink(Protocol):
    """Where a :class:`Logger` writes: the host's ``log`` import in a plugin, a
    :class:`~wasm_reconciler_sdk.testkit.FakeLog` in tests."""

    def log(self, level: Level, message: str) -> None:
        """Writes one line."""


class Logger:
    """Writes log lines to the host's log. The host files them under the span of the
    reconcile (plugin, kind, namespace, name), so a message need not repeat those.

    Like :mod:`logging`, each method takes a message and optional ``%`` arguments, formatted
    only when there are arguments::

        ctx.log.info("deployment is up to date")
        ctx.log.debug("want %d replicas", replicas)

    The host escapes control characters, cuts a line at 4 KiB, and lets a plugin write 200
    lines in a burst, then 50 per second, dropping the rest and counting them.
    """

    __slots__ = ("_sink",)

    def __init__(self, sink: LogSink) -> None:
        self._sink = sink

    def log(self, level: Level, msg: str, *args: object) -> None:
        """Writes ``msg % args`` (or ``msg`` alone without ``args``) at ``level``."""
        self._sink.log(Level(level), str(msg) % args if args else str(msg))

    def trace(self, msg: str, *args: object) -> None:
        """Writes at :attr:`Level.TRACE`."""
        self.log(Level.TRACE, msg, *args)

    def debug(self, msg: str, *args: object) -> None:
        """Writes at :attr:`Level.DEBUG`."""
        self.log(Level.DEBUG, msg, *args)

    def info(self, msg: str, *args: object) -> None:
        """Writes at :attr:`Level.INFO`."""
        self.log(Level.INFO, msg, *args)

    def warning(self, msg: str, *args: object) -> None:
        """Writes at :attr:`Level.WARN`."""
        self.log(Level.WARN, msg, *args)

    def error(self, msg: str, *args: object) -> None:
        """Writes at :attr:`Level.ERROR`."""
        self.log(Level.ERROR, msg, *args)

    def __repr__(self) -> str:
        return "Logger(..)"
