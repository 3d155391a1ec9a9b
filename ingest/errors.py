"""The one error a reader or sectionizer raises for a file it cannot use."""

from __future__ import annotations


class IngestError(Exception):
    """A file that cannot be ingested; the message is one sentence naming the file and the problem."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
