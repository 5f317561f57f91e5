"""Logging set-up for the CLI: `-v` for more, `--log-format json` for machines."""

from __future__ import annotations

import json
import logging
import time

from pipecast.transport import TRACE

__all__ = ["setup_logging"]


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "thread": record.threadName,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def setup_logging(verbose: int, fmt: str) -> None:
    """WARNING; -v INFO (what changed); -vv DEBUG (every request); -vvv TRACE (heartbeats)."""
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[verbose] if verbose < 3 else TRACE
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.Formatter.converter = time.gmtime
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
