"""What the browser client's composer completes: slash commands, their first words and options.

The host of a workspace describes its app's commands with these; the workspace knows no app.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Suggestion:
    """One completion the composer offers: what to insert and a line saying what it does."""

    value: str
    description: str = ""
    kind: str = "arg"


@dataclass
class CommandHints:
    """What the composer completes after `/command `: first words (verbs, scenarios) and the
    options each first word takes."""

    command: str
    description: str = ""
    first: list[Suggestion] = field(default_factory=list)
    options: dict[str, list[Suggestion]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "description": self.description,
            "first": [asdict(s) for s in self.first],
            "options": {k: [asdict(s) for s in v] for k, v in self.options.items()},
        }
