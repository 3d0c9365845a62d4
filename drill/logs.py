"""The drill's clock and timeline, and the handlers' structured logs captured onto it."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final


@dataclass
class Timeline:
    started: float = field(default_factory=time.monotonic)
    entries: list[tuple[float, str]] = field(default_factory=list)

    def now_ms(self) -> float:
        return (time.monotonic() - self.started) * 1000

    def add(self, text: str, at_ms: float | None = None) -> None:
        self.entries.append((self.now_ms() if at_ms is None else at_ms, text))


@dataclass(frozen=True)
class HandlerLog:
    at_ms: float
    message: str
    fields: Mapping[str, Any]


# What every log record carries; the rest are the keys the handler logged (Powertools passes them as extra).
_STANDARD_RECORD_KEYS: Final = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime",
}


class LogSink(logging.Handler):
    """Keeps the handlers' structured log records, stamped with the drill clock."""

    def __init__(self, timeline: Timeline) -> None:
        super().__init__(logging.INFO)
        self.timeline = timeline
        self.records: list[HandlerLog] = []

    def emit(self, record: logging.LogRecord) -> None:
        fields = {key: value for key, value in record.__dict__.items() if key not in _STANDARD_RECORD_KEYS}
        self.records.append(HandlerLog(self.timeline.now_ms(), record.getMessage(), fields))


@contextmanager
def captured_logs(logger_names: Sequence[str], sink: LogSink) -> Iterator[None]:
    """Route the handlers' logs to ``sink`` instead of stdout (the timeline reports them)."""
    loggers = [logging.getLogger(name) for name in dict.fromkeys(logger_names)]
    saved_levels = [(logger, logger.level) for logger in loggers]
    saved_handler_levels = [(handler, handler.level) for logger in loggers for handler in logger.handlers]
    for handler, _ in saved_handler_levels:
        handler.setLevel(logging.CRITICAL + 1)
    for logger in loggers:
        logger.setLevel(logging.INFO)
        logger.addHandler(sink)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeHandler(sink)
        for logger, level in saved_levels:
            logger.setLevel(level)
        for handler, level in saved_handler_levels:
            handler.setLevel(level)
