"""``StoreLock``: one job at a time on what several processes share (a store's FAISS file, a derived index).

An exclusive ``flock`` on a small file, re-entrant within one ``StoreLock`` object; the operating system
releases it when the holder exits, however it exits, so a killed job never leaves a stale lock.

>>> with StoreLock(Path("store/.ingest.lock"), wait=False, holder="another ingestion job is writing to store/"):
...     ...                                    # raises RuntimeError at once if the lock is held
>>> with StoreLock(Path(".store.eval-lock"), wait=True, holder="another process ingests into store/"):
...     ...                                    # says once on stderr that it waits, then waits
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path
from typing import IO, Self


def owner_only(path: Path) -> Path:
    """Creates ``path`` empty and readable by its owner only (0600) unless it exists: store files hold document
    text. SQLite gives a database's -wal and -shm files the database file's mode."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass
    return path


class StoreLock:
    """An exclusive lock on ``path``. ``wait=False`` raises ``RuntimeError`` naming ``holder`` when another
    process holds it; ``wait=True`` prints that it waits for ``holder`` (stderr) and blocks until it is free."""

    def __init__(self, path: Path, *, wait: bool, holder: str) -> None:
        self.path = Path(path)
        self.wait = wait
        self.holder = holder
        self._fh: IO[str] | None = None
        self._depth = 0

    def __enter__(self) -> Self:
        if self._depth == 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fh = os.fdopen(os.open(owner_only(self.path), os.O_WRONLY | os.O_APPEND), "a")
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not self.wait:
                    fh.close()
                    raise RuntimeError(f"{self.holder}; wait for it to finish") from None
                # say why nothing happens: what the holder does can take many minutes
                print(f"waiting for {self.path}: {self.holder}", file=sys.stderr, flush=True)
                fcntl.flock(fh, fcntl.LOCK_EX)
            fh.truncate(0)
            fh.write(str(os.getpid()))
            fh.flush()
            self._fh = fh
        self._depth += 1
        return self

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fh is not None:
            self._fh.close()  # closing releases the lock
            self._fh = None
