"""The batch ingestion job: files → documents → sections, in a process pool, resumable and failure-tolerant.

Workers read and sectionize; the calling process hands each parsed file to a ``sink`` (the pipeline
embeds and stores it in one transaction). So:

* re-running skips files whose content hash is already stored (``skipped``);
* killing the job at any moment loses at most the files in flight, which the next run redoes — a
  file is stored wholly or not at all, never twice;
* a bad file is recorded in ``failed`` with one line and the job goes on; a worker that dies (a
  parser crash, a killed process) costs only the files it held, which are retried once.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from ingest.errors import IngestError
from pipeline.config import IngestConfig
from pipeline.types import Document, FailedFile, IngestWarning, ParsedFile

Sink = Callable[[ParsedFile], tuple[int, int]]
"""Stores a parsed file; returns (sections, passages) stored."""


def _path_problem(p: Path) -> str | None:
    """Why an input path cannot be walked or read (``None``: it can)."""
    if not p.is_symlink():
        return None if p.exists() else "path does not exist"
    try:
        target = p.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 reports a loop this way
        return "symbolic link loop; skipped"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop; skipped"
        return f"broken symbolic link (its target {os.readlink(p)} does not exist); skipped"
    return None if target.exists() else f"broken symbolic link (its target {os.readlink(p)} does not exist); skipped"


def expand(paths: Iterable[str | Path]) -> tuple[list[Path], list[FailedFile]]:
    """Inputs → the units to ingest: files, and each FHIR bulk export (a folder's ``*.ndjson`` files) as one unit.

    Folders are walked in sorted order; hidden files are skipped. The other files in a folder that holds an export
    are units of their own (a contract beside ``Patient.ndjson`` is stored whatever the export's fate). A missing
    path, a broken symbolic link and a link back into a folder being walked are failures, each named.
    """
    from ingest.readers import is_fhir_bulk_export

    units: list[Path] = []
    failed: list[FailedFile] = []

    def walk(folder: Path, seen: frozenset[Path]) -> Iterator[Path]:
        if is_fhir_bulk_export(folder):
            yield folder
        try:
            children = sorted(folder.iterdir())
        except OSError as exc:
            failed.append(FailedFile(str(folder), f"folder cannot be read: {exc.strerror or exc}"))
            return
        for child in children:
            if child.name.startswith("."):
                continue
            problem = _path_problem(child)
            if problem:
                failed.append(FailedFile(str(child), problem))
            elif child.is_dir():
                real = child.resolve()
                if real in seen:
                    failed.append(FailedFile(str(child), f"symbolic link loop (back to {real}); skipped"))
                else:
                    yield from walk(child, seen | {real})
            elif child.suffix.lower() == ".ndjson" and is_fhir_bulk_export(folder):
                continue  # read with the export it belongs to
            elif child.is_file():
                yield child
            else:
                failed.append(FailedFile(str(child), "not a regular file (a device, pipe or socket); skipped"))

    for p in map(Path, paths):
        problem = _path_problem(p)
        if problem:
            failed.append(FailedFile(str(p), problem))
        elif p.is_dir():
            units += list(walk(p, frozenset({p.resolve()})))
        elif p.is_file():
            units.append(p)
        else:
            failed.append(FailedFile(str(p), "not a regular file (a device, pipe or socket); skipped"))
    return list(dict.fromkeys(units)), failed


def unit_sha(path: Path) -> str:
    """Content hash of a file (or of a bulk-export folder's NDJSON files, names included)."""
    h = hashlib.sha256()
    files = sorted(path.glob("*.ndjson")) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(f.name.encode() + b"\x00")
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


def read_documents(path: str | Path, cfg: IngestConfig) -> list[Document]:
    """The documents one unit holds as they would be stored: text, kind and metadata (raises ``IngestError``)."""
    from ingest.metadata import with_metadata
    from ingest.readers import read
    from ingest.sectionizers import detect_kind

    out = []
    for doc in read(path, max_bytes=int(cfg.max_file_mb * 2**20)):
        if doc.kind == "generic":
            doc = replace(doc, kind=detect_kind(doc.text))
        out.append(with_metadata(doc, cfg.metadata_min_confidence))
    return out


def parse_unit(path: str, sha: str, cfg: IngestConfig) -> ParsedFile | FailedFile:
    """Read and sectionize one unit (runs in a worker process).

    The unit is hashed before and after it is read: a file that vanishes or changes meanwhile is a failure (re-run to
    ingest what it now is), never a half-old, half-new document; what is stored carries the hash of what was read.
    """
    from ingest.sectionizers import sectionize

    unit = Path(path)
    try:
        before = unit_sha(unit)
    except FileNotFoundError:
        return FailedFile(path, "vanished before it could be read")
    except OSError as exc:
        return FailedFile(path, f"cannot be read: {exc.strerror or exc}")
    try:
        out = []
        for doc in read_documents(path, cfg):
            sections = sectionize(doc, target_tokens=cfg.target_tokens, max_tokens=cfg.max_tokens)
            out.append((doc, tuple(sections)))
    except IngestError as exc:  # a file inside a unit (an export's NDJSON file) is named in the reason
        inner = Path(exc.path).name if exc.path not in (path, str(unit)) else ""
        return FailedFile(path, f"{inner}: {exc.reason}" if inner else exc.reason)
    except MemoryError:
        limit = f" (the limit per file is {cfg.file_memory_mb} MB, ingest.file_memory_mb)" if cfg.file_memory_mb else ""
        return FailedFile(path, f"needs more memory to read than it may use{limit}")
    except RecursionError:
        return FailedFile(path, "is nested too deeply to read")
    except Exception as exc:  # noqa: BLE001 — a sectionizer bug must not stop a batch of thousands of files
        return FailedFile(path, f"could not be sectionized ({type(exc).__name__}: {exc})")
    try:
        after = unit_sha(unit)
    except OSError:
        return FailedFile(path, "vanished while it was being read; nothing of it was stored")
    if after != before:
        return FailedFile(path, "changed while it was being read; nothing of it was stored, re-run to ingest it")
    return ParsedFile(path=path, sha=before, documents=tuple(out))


@dataclass
class JobCounts:
    documents: int = 0
    sections: int = 0
    passages: int = 0
    pages: int = 0
    skipped: int = 0
    warnings: list[IngestWarning] = field(default_factory=list)


def plan(paths: Iterable[str | Path], stored_sha: Callable[[str], str | None]
         ) -> tuple[list[tuple[str, str]], list[FailedFile], int]:
    """The units still to ingest as ``(absolute path, content hash)``, failures so far, and how many are unchanged."""
    units, failed = expand(paths)
    todo: list[tuple[str, str]] = []
    skipped = 0
    for unit in units:
        key = str(unit.resolve())
        try:
            sha = unit_sha(unit)
        except OSError as exc:
            failed.append(FailedFile(str(unit), f"cannot be read: {exc.strerror or exc}"))
            continue
        if stored_sha(key) == sha:
            skipped += 1
        else:
            todo.append((key, sha))
    return todo, failed, skipped


class Consumer:
    """Hands parsed files to the sink, records failures, counts, and drives the progress bar."""

    def __init__(self, sink: Sink, failed: list[FailedFile], skipped: int, total: int, progress: bool) -> None:
        from tqdm import tqdm

        self.sink = sink
        self.failed = failed
        self.counts = JobCounts(skipped=skipped)
        self.bar = tqdm(total=total, unit="file", desc="ingest", disable=not progress, dynamic_ncols=True)

    def __call__(self, result: ParsedFile | FailedFile) -> None:
        if isinstance(result, FailedFile):
            self.failed.append(result)
        else:
            sections, passages = self.sink(result)
            self.counts.documents += len(result.documents)
            self.counts.sections += sections
            self.counts.passages += passages
            self.counts.pages += result.pages
            self.counts.warnings += result.warnings
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def run_local(
    paths: Iterable[str | Path],
    *,
    stored_sha: Callable[[str], str | None],
    sink: Sink,
    cfg: IngestConfig,
    progress: bool = True,
) -> tuple[JobCounts, list[FailedFile], float]:
    """Runs the job on local worker processes (``cfg.workers``), each file within ``cfg.file_timeout_s`` seconds and
    ``cfg.file_memory_mb`` MB; with one worker and neither limit set, files are read in this process."""
    t0 = time.perf_counter()
    todo, failed, skipped = plan(paths, stored_sha)
    consume = Consumer(sink, failed, skipped, len(todo), progress)
    try:
        if cfg.workers <= 1 and not cfg.file_timeout_s and not cfg.file_memory_mb:
            for path, sha in todo:
                consume(parse_unit(path, sha, cfg))
        elif todo:
            _run_workers(todo, cfg, consume)
    finally:
        consume.close()
    return consume.counts, failed, time.perf_counter() - t0


_START_S = 120
"""Seconds a worker process may take to start."""
_TICK = 0.25
"""Seconds between the supervisor's looks at its workers' clocks."""


def _serve(conn, cfg: IngestConfig) -> None:
    """A worker: parses the units it is sent, one at a time, within its memory limit, until sent ``None``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the supervisor's to handle: it stops the workers
    import ingest.readers
    import ingest.sectionizers  # noqa: F401 — imported before the clock of the first file starts
    if cfg.file_memory_mb:
        try:
            import resource

            limit = cfg.file_memory_mb * 2**20
            _, hard = resource.getrlimit(resource.RLIMIT_DATA)
            resource.setrlimit(resource.RLIMIT_DATA, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
        except (ImportError, ValueError, OSError):  # no such limit on this platform: the clock still applies
            pass
    conn.send("ready")
    while True:
        try:
            item = conn.recv()
        except (EOFError, OSError):
            return
        if item is None:
            return
        conn.send(parse_unit(item[0], item[1], cfg))


class _Worker:
    """One worker process and the unit it holds (``None``: idle)."""

    def __init__(self, ctx, cfg: IngestConfig) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, cfg), daemon=True, name="sectionrag-ingest")
        self.proc.start()
        child.close()
        self.item: tuple[str, str] | None = None
        self.since = 0.0
        # a file's clock starts once the worker is ready, not while a busy machine starts Python
        try:
            ready = self.conn.poll(_START_S) and self.conn.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            self.stop(kill=True)
            raise RuntimeError(f"an ingest worker process did not start within {_START_S} s")

    def give(self, item: tuple[str, str]) -> None:
        self.item, self.since = item, time.monotonic()
        self.conn.send(item)

    def result(self) -> ParsedFile | FailedFile | None:
        """The unit's result if it is ready; ``None`` while it is being read or if the worker died."""
        try:
            return self.conn.recv() if self.conn.poll() else None
        except (EOFError, OSError):
            return None

    def stop(self, kill: bool = False) -> None:
        if not kill and self.proc.is_alive():
            with contextlib.suppress(OSError):
                self.conn.send(None)
            self.proc.join(1.0)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.conn.close()


def _run_workers(todo: list[tuple[str, str]], cfg: IngestConfig, consume) -> None:
    """Supervises ``cfg.workers`` worker processes: a unit past its time limit has its worker killed and is a failure;
    a worker that dies (a parser crash, the memory limit hit in native code, a kill) costs only its unit, which is
    retried once in a fresh worker."""
    from multiprocessing.connection import wait as wait_any

    # spawn, not fork: the parent holds torch and its threads, which do not survive a fork reliably
    ctx = multiprocessing.get_context("spawn")
    queue = deque(todo)
    attempts: dict[str, int] = {}
    pool: list[_Worker | None] = [None] * max(1, min(cfg.workers, len(todo)))
    try:
        while queue or any(w is not None and w.item for w in pool):
            for i, w in enumerate(pool):
                if queue and (w is None or not w.item):
                    if w is None or not w.proc.is_alive():
                        if w is not None:
                            w.stop(kill=True)
                        w = pool[i] = _Worker(ctx, cfg)
                    item = queue.popleft()
                    try:
                        w.give(item)
                    except OSError:  # died before it was sent anything: a fresh one takes the unit
                        queue.appendleft(item)
                        w.item = None
            busy = [w for w in pool if w is not None and w.item]
            wait_any([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout=_TICK)
            for i, w in enumerate(pool):
                if w is None or not w.item:
                    continue
                result = w.result()
                if result is not None:
                    w.item = None
                    consume(result)
                elif not w.proc.is_alive():
                    path = w.item[0]
                    attempts[path] = attempts.get(path, 0) + 1
                    if attempts[path] >= 2:
                        memory = (f"more than the {cfg.file_memory_mb} MB a file may use, ingest.file_memory_mb"
                                  if cfg.file_memory_mb else "out of memory")
                        consume(FailedFile(path, f"the parser process died while reading it (exit code "
                                                 f"{w.proc.exitcode}: a crash, or {memory})"))
                    else:
                        queue.appendleft(w.item)
                    w.stop(kill=True)
                    pool[i] = None
                elif cfg.file_timeout_s and time.monotonic() - w.since > cfg.file_timeout_s:
                    path = w.item[0]
                    w.stop(kill=True)
                    pool[i] = None
                    consume(FailedFile(path, f"took longer than {cfg.file_timeout_s:g} s to read "
                                             "(the limit per file, ingest.file_timeout_s); stopped"))
    finally:
        for w in pool:
            if w is not None:
                w.stop(kill=bool(w.item))
