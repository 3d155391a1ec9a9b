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

import hashlib
import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path

from ingest.errors import IngestError
from pipeline.config import IngestConfig
from pipeline.types import Document, FailedFile, IngestWarning, ParsedFile

Sink = Callable[[ParsedFile], tuple[int, int]]
"""Stores a parsed file; returns (sections, passages) stored."""


def expand(paths: Iterable[str | Path]) -> tuple[list[Path], list[FailedFile]]:
    """Inputs → the units to ingest: files, and FHIR bulk-export folders as one unit each.

    Folders are walked in sorted order; hidden files are skipped. A missing path is a failure.
    """
    from ingest.readers import is_fhir_bulk_export

    units: list[Path] = []
    failed: list[FailedFile] = []

    def walk(folder: Path) -> Iterator[Path]:
        if is_fhir_bulk_export(folder):
            yield folder
            return
        for child in sorted(folder.iterdir()):
            if child.name.startswith("."):
                continue
            if child.is_dir():
                yield from walk(child)
            elif child.is_file():
                yield child

    for p in map(Path, paths):
        if not p.exists():
            failed.append(FailedFile(str(p), "path does not exist"))
        elif p.is_dir():
            units += list(walk(p))
        else:
            units.append(p)
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
    """Read and sectionize one unit (runs in a worker process)."""
    from ingest.sectionizers import sectionize

    try:
        out = []
        for doc in read_documents(path, cfg):
            sections = sectionize(doc, target_tokens=cfg.target_tokens, max_tokens=cfg.max_tokens)
            out.append((doc, tuple(sections)))
        return ParsedFile(path=path, sha=sha, documents=tuple(out))
    except IngestError as exc:
        return FailedFile(path, exc.reason)
    except Exception as exc:  # noqa: BLE001 — a sectionizer bug must not stop a batch of thousands of files
        return FailedFile(path, f"could not be sectionized ({type(exc).__name__}: {exc})")


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
    """Runs the job on local worker processes (``cfg.workers``; 1 means in this process)."""
    t0 = time.perf_counter()
    todo, failed, skipped = plan(paths, stored_sha)
    consume = Consumer(sink, failed, skipped, len(todo), progress)
    try:
        if cfg.workers <= 1 or len(todo) <= 1:
            for path, sha in todo:
                consume(parse_unit(path, sha, cfg))
        else:
            _run_pool(todo, cfg, consume)
    finally:
        consume.close()
    return consume.counts, failed, time.perf_counter() - t0


def _run_pool(todo: list[tuple[str, str]], cfg: IngestConfig, consume) -> None:
    # spawn, not fork: the parent holds torch and its threads, which do not survive a fork reliably
    ctx = multiprocessing.get_context("spawn")
    queue = list(reversed(todo))
    attempts: dict[str, int] = {}
    window = cfg.workers * 2
    while queue:
        pool = ProcessPoolExecutor(max_workers=cfg.workers, mp_context=ctx)
        inflight: dict[Future, tuple[str, str]] = {}
        broken = False
        try:
            while (queue or inflight) and not broken:
                while queue and len(inflight) < window:
                    item = queue.pop()
                    try:
                        inflight[pool.submit(parse_unit, item[0], item[1], cfg)] = item
                    except BrokenProcessPool:
                        queue.append(item)
                        broken = True
                        break
                if not inflight:
                    break
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                for fut in done:
                    exc = fut.exception()
                    if isinstance(exc, BrokenProcessPool):
                        broken = True  # stays in flight: retried below
                        continue
                    item = inflight.pop(fut)
                    if exc is not None:
                        consume(FailedFile(item[0], f"could not be parsed ({type(exc).__name__}: {exc})"))
                    else:
                        consume(fut.result())
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        if broken:
            # A worker died; every unit it could have held is retried once in a fresh pool.
            for item in inflight.values():
                attempts[item[0]] = attempts.get(item[0], 0) + 1
                if attempts[item[0]] >= 2:
                    consume(FailedFile(item[0], "the parser process died while reading it (crash or out of memory)"))
                else:
                    queue.append(item)

