"""Logging: JSON lines for ``serve`` and ``worker`` (one object per line, for a log
pipeline), readable text for ``dev``; every record carries the request ID of the request
or job it belongs to (``store.job_context.REQUEST_ID``).

The standard library's ``logging`` with a small JSON formatter: structlog would add a
dependency for what one class does here. Fields a caller passes with ``extra=`` (the
request lines of ``starling.request_log``) become JSON keys.

Nothing here logs request headers or bodies, and the request lines carry the path without
its query string (a GET query's variables may hold anything): tokens and passwords never
reach a log line (``tests/test_logs.py``).
"""

from __future__ import annotations

import logging
import logging.config
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from starling.store.job_context import REQUEST_ID

LogFormat = Literal["json", "text"]

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRIBUTES = frozenset(
    set(vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)))
    | {"message", "asctime", "request_id", "request_tag"}
)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(request_tag)s: %(message)s"


class RequestIdFilter(logging.Filter):
    """Stamps each record with the current request ID (None outside a request or job)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = REQUEST_ID.get()
        record.request_id = request_id
        record.request_tag = f" [{request_id}]" if request_id else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, the record's
    ``extra`` fields, and the exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and key != "request_tag":
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


def logging_config(level: str, log_format: LogFormat) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` configuration: every logger (uvicorn's and arq's
    included) to one stderr handler. uvicorn applies it in each of its worker processes."""
    level = level.upper()
    formatter: dict[str, Any] = {"()": JsonFormatter} if log_format == "json" else {"format": TEXT_FORMAT}
    quiet = {} if level == "DEBUG" else {"arq": {"level": "WARNING"}}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"starling": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "filters": ["request_id"],
                "formatter": "starling",
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        # uvicorn's loggers carry handlers of their own unless told to propagate to ours;
        # arq logs every job start and end at INFO: too chatty unless debugging.
        "loggers": {
            **{
                name: {"handlers": [], "propagate": True}
                for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
            },
            **quiet,
        },
    }


def configure_logging(level: str, log_format: LogFormat) -> None:
    logging.config.dictConfig(logging_config(level, log_format))
