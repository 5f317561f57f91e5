"""Messages every supervised actor understands, and the one it sends when it dies.

Values only (frozen dataclasses); told, never asked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["ChildFailed", "StatisticsRequest"]


@dataclass(frozen=True, slots=True)
class StatisticsRequest:
    """Told to a component: it calls `reply` (in its own thread) with its statistics."""

    reply: Callable[[Any], None]


@dataclass(frozen=True, slots=True)
class ChildFailed:
    """Told to the supervisor by a child that died (or could not start)."""

    name: str
    urn: str
    error: str
