"""The same batch job on Ray Data: the project's path from one machine to a cluster.

Parsing and sectionizing run as a Ray Data ``map`` over the units to ingest; the parsed files
stream back to this process, which stores each one exactly as the local engine does (same sink,
same one-transaction-per-file rule), so both engines produce the same store and the same
skip/resume behaviour. ``RAY_ADDRESS`` selects an existing cluster; otherwise a local Ray instance
with ``workers`` CPUs is started for the job.
"""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from ingest.job import Consumer, JobCounts, Sink, parse_unit, plan
from pipeline.config import IngestConfig
from pipeline.types import FailedFile


def _parse_row(row: dict, cfg: IngestConfig) -> dict:
    result = parse_unit(row["path"], row["sha"], cfg)
    # pickled so the typed records cross Ray's Arrow blocks unchanged
    return {"path": row["path"], "result": pickle.dumps(result)}


def run_ray(
    paths: Iterable[str | Path],
    *,
    stored_sha: Callable[[str], str | None],
    sink: Sink,
    cfg: IngestConfig,
    progress: bool = True,
) -> tuple[JobCounts, list[FailedFile], float]:
    try:
        import ray
        import ray.data
    except ImportError:
        raise RuntimeError("the ray engine needs Ray: pip install 'sectionrag[distributed]'") from None
    t0 = time.perf_counter()
    todo, failed, skipped = plan(paths, stored_sha)
    consume = Consumer(sink, failed, skipped, len(todo), progress)
    started = False
    try:
        if todo:
            if not ray.is_initialized():
                kwargs = {} if os.environ.get("RAY_ADDRESS") else {"num_cpus": cfg.workers, "include_dashboard": False}
                ray.init(ignore_reinit_error=True, log_to_driver=False, logging_level="ERROR", **kwargs)
                started = True
            ctx = ray.data.DataContext.get_current()
            ctx.enable_progress_bars = False
            ctx.execution_options.preserve_order = False
            ds = ray.data.from_items([{"path": p, "sha": sha} for p, sha in todo], override_num_blocks=len(todo))
            ds = ds.map(_parse_row, fn_kwargs={"cfg": cfg}, concurrency=cfg.workers, num_cpus=1)
            for row in ds.iter_rows():
                consume(pickle.loads(row["result"]))
    finally:
        consume.close()
        if started:
            ray.shutdown()
    return consume.counts, failed, time.perf_counter() - t0
