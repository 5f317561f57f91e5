"""The TRACE log level (5, below DEBUG): what happens every heartbeat.

A person running `pipecast start -v` wants what changed (a job, a stage, a
watcher joining); `-vv` adds every request; only `-vvv` shows the lines that
come every second from every watcher (presence heartbeats). Importing this
module names the level for the log formatters.
"""

from __future__ import annotations

import logging

__all__ = ["TRACE"]

TRACE = 5
logging.addLevelName(TRACE, "TRACE")
