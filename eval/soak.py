"""Soak run: many questions in a loop on one ``Pipeline``, to see whether speed holds and memory stays put.

Questions are drawn (seeded, with replacement once the pool is used up) from the development questions of
every suite whose documents the store holds, each asked of its own document as the evaluation harness asks
it. The report gives throughput, latency p50/p95 overall and per window of ``--window`` questions, and the
process's resident memory (RSS) after every question. The growth check compares the RSS at the end of the
last window with that at the end of the first window after ``--warmup-windows`` (models loaded, caches
filled): it fails, and the command exits 1, when the growth exceeds the larger of ``--max-growth-mb`` and
``--max-growth-pct`` of that baseline. A question that raises also makes the run fail.

    python -m eval.soak --store STORE [--questions 1000] [--out FILE.json] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from eval.datasets import QA_SUITES, Item, load_suite
from pipeline import Pipeline
from pipeline.config import PipelineConfig

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
SEED = 20241207
WINDOW = 100
WARMUP_WINDOWS = 1
MAX_GROWTH_MB = 200.0
MAX_GROWTH_PCT = 10.0
"""The default bound: RSS may grow by 200 MB or 10% of the post-warm-up baseline, whichever is larger."""


@dataclass(frozen=True, slots=True)
class Asked:
    """One question of the run: when it finished, how long it took, and the process RSS right after."""

    index: int
    item: str
    seconds: float
    latency: float
    rss_mb: float
    abstained: bool
    error: str = ""


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q ≤ 100) of ``values`` (NaN when empty)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def questions_for(pipe: Pipeline, data: Path) -> tuple[list[Item], list[str]]:
    """The dev questions of every suite about a document the store holds, and those suites' names."""
    stored = set(pipe.documents())
    items: list[Item] = []
    suites: list[str] = []
    for name in QA_SUITES:
        try:
            suite = load_suite(name, data)
        except ValueError:
            continue  # this suite's data is not here: the store cannot hold its documents either
        mine = [it for it in suite.items if it.doc_id in stored]
        if mine:
            items += mine
            suites.append(name)
    return items, suites


def draw(items: Sequence[Item], n: int, seed: int) -> list[Item]:
    """``n`` questions: the pool shuffled (seeded), again and again until there are enough."""
    rng = random.Random(seed)
    out: list[Item] = []
    while len(out) < n:
        pool = list(items)
        rng.shuffle(pool)
        out += pool[: n - len(out)]
    return out


def rss_mb(process: psutil.Process) -> float:
    return process.memory_info().rss / 2**20


def run(pipe: Pipeline, items: Sequence[Item], *, llm: str | None = None, progress_every: int = 0) -> list[Asked]:
    """Asks every item in order (each of its own document); one ``Asked`` per item. An interrupt (Ctrl-C,
    SIGTERM) ends the run early with the questions finished so far."""
    process = psutil.Process(os.getpid())
    asked: list[Asked] = []
    t_start = time.perf_counter()
    for i, it in enumerate(items):
        t0 = time.perf_counter()
        error, abstained = "", False
        try:
            abstained = pipe.ask(it.question, [it.doc_id], llm=llm).abstained
        except KeyboardInterrupt:
            print(f"interrupted: reporting the {len(asked)} questions finished", file=sys.stderr, flush=True)
            break
        except Exception as exc:  # a soak records every failure and goes on; any one fails the run
            error = f"{type(exc).__name__}: {exc}"
        t1 = time.perf_counter()
        asked.append(Asked(index=i, item=it.id, seconds=round(t1 - t_start, 3), latency=t1 - t0,
                           rss_mb=round(rss_mb(process), 1), abstained=abstained, error=error))
        if progress_every and (i + 1) % progress_every == 0:
            window = asked[-progress_every:]
            print(f"{i + 1}/{len(items)}: {len(window) / sum(a.latency for a in window):.2f} questions/s, "
                  f"p50 {percentile([a.latency for a in window], 50):.3f} s, RSS {asked[-1].rss_mb:.0f} MB",
                  file=sys.stderr, flush=True)
    return asked


def _latency(values: Sequence[float]) -> dict[str, float]:
    return {"p50": round(percentile(values, 50), 4), "p95": round(percentile(values, 95), 4),
            "mean": round(statistics.fmean(values), 4), "max": round(max(values), 4)}


def report(asked: Sequence[Asked], *, window: int = WINDOW, warmup_windows: int = WARMUP_WINDOWS,
           max_growth_mb: float = MAX_GROWTH_MB, max_growth_pct: float = MAX_GROWTH_PCT,
           rss_start_mb: float | None = None) -> dict:
    """Throughput, latency and RSS of a run, overall and per window, and the growth check (``growth.ok``)."""
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    if not asked:
        raise ValueError("no questions were asked")
    windows = []
    for w, first in enumerate(range(0, len(asked), window)):
        part = asked[first: first + window]
        latencies = [a.latency for a in part]
        elapsed = part[-1].seconds - (asked[first - 1].seconds if first else 0.0)
        windows.append({"window": w, "first": part[0].index, "last": part[-1].index, "questions": len(part),
                        "seconds": round(elapsed, 3), "questions_per_s": round(len(part) / elapsed, 4),
                        **_latency(latencies), "rss_mb": part[-1].rss_mb, "rss_max_mb": max(a.rss_mb for a in part)})
    latencies = [a.latency for a in asked]
    seconds = asked[-1].seconds
    # a run too short for its warm-up still compares two windows when it has two
    base_window = max(0, min(warmup_windows, len(windows) - 2))
    base, last = windows[base_window]["rss_mb"], windows[-1]["rss_mb"]
    bound = max(max_growth_mb, max_growth_pct / 100 * base)
    growth = last - base
    errors = [{"index": a.index, "item": a.item, "error": a.error} for a in asked if a.error]
    return {
        "questions": len(asked),
        "errors": len(errors),
        "error_examples": errors[:10],
        "abstained": sum(a.abstained for a in asked),
        "seconds": round(seconds, 3),
        "questions_per_s": round(len(asked) / seconds, 4),
        "latency_s": _latency(latencies),
        "windows": windows,
        "rss_mb": {"start": rss_start_mb, "first": asked[0].rss_mb, "end": asked[-1].rss_mb,
                   "max": max(a.rss_mb for a in asked),
                   "samples": [{"question": a.index, "seconds": a.seconds, "rss_mb": a.rss_mb} for a in asked]},
        "growth": {"baseline_window": base_window, "baseline_mb": base, "last_mb": last,
                   "growth_mb": round(growth, 1), "growth_pct": round(100 * growth / base, 2),
                   "max_growth_mb": max_growth_mb, "max_growth_pct": max_growth_pct, "bound_mb": round(bound, 1),
                   "ok": growth <= bound},
    }


def soak(store: Path, n: int, *, data: Path = DATA, seed: int = SEED, llm: str = "extractive", window: int = WINDOW,
         warmup_windows: int = WARMUP_WINDOWS, max_growth_mb: float = MAX_GROWTH_MB,
         max_growth_pct: float = MAX_GROWTH_PCT, progress: bool = False) -> dict:
    """The soak report of ``n`` questions on ``store`` (see the module docstring)."""
    if n < 1:
        raise ValueError(f"--questions must be at least 1, got {n}")
    if not Pipeline.is_store(store):
        raise ValueError(f"no sectionrag store at {store}: run `sectionrag ingest PATH --store {store}` first")
    process = psutil.Process(os.getpid())
    rss_start = round(rss_mb(process), 1)
    with Pipeline(store, PipelineConfig().replace(synthesize={"llm": llm})) as pipe:
        pool, suites = questions_for(pipe, Path(data))
        if not pool:
            raise ValueError(f"no dev question of {', '.join(QA_SUITES)} under {data} is about a document in {store}")
        asked = run(pipe, draw(pool, n, seed), llm=llm, progress_every=window if progress else 0)
    out = report(asked, window=window, warmup_windows=warmup_windows, max_growth_mb=max_growth_mb,
                 max_growth_pct=max_growth_pct, rss_start_mb=rss_start)
    return {"store": str(store), "suites": suites, "pool": len(pool), "seed": seed, "llm": llm, "window": window,
            "warmup_windows": warmup_windows, "requested": n, "interrupted": len(asked) < n, **out}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.soak", description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", required=True, type=Path)
    ap.add_argument("--questions", type=int, default=1000, help="how many questions to ask (default 1000)")
    ap.add_argument("--data", type=Path, default=DATA, help="the dev data folder (default ../shared/data)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--llm", choices=["extractive", "local", "openai"], default="extractive")
    ap.add_argument("--window", type=int, default=WINDOW, help=f"questions per window (default {WINDOW})")
    ap.add_argument("--warmup-windows", type=int, default=WARMUP_WINDOWS,
                    help=f"windows before the RSS baseline (default {WARMUP_WINDOWS})")
    ap.add_argument("--max-growth-mb", type=float, default=MAX_GROWTH_MB,
                    help=f"RSS growth allowed after warm-up, in MB (default {MAX_GROWTH_MB:g})")
    ap.add_argument("--max-growth-pct", type=float, default=MAX_GROWTH_PCT,
                    help=f"... or in percent of the baseline, whichever is larger (default {MAX_GROWTH_PCT:g})")
    ap.add_argument("--out", type=Path, help="write the report (JSON) here")
    ap.add_argument("--json", action="store_true", help="print the report as one JSON object on stdout")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` ends the run with a report, as Ctrl-C does
    try:
        result = soak(args.store, args.questions, data=args.data, seed=args.seed, llm=args.llm, window=args.window,
                      warmup_windows=args.warmup_windows, max_growth_mb=args.max_growth_mb,
                      max_growth_pct=args.max_growth_pct, progress=True)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    g = result["growth"]
    summary = (f"{result['questions']} questions in {result['seconds']:.0f} s: {result['questions_per_s']:.2f}/s, "
               f"p50 {result['latency_s']['p50']:.3f} s, p95 {result['latency_s']['p95']:.3f} s; RSS start "
               f"{result['rss_mb']['start']:.0f} MB, end {result['rss_mb']['end']:.0f} MB, max {result['rss_mb']['max']:.0f} MB; "
               f"growth after warm-up {g['growth_mb']:+.0f} MB (bound {g['bound_mb']:.0f} MB) "
               f"{'ok' if g['ok'] else 'EXCEEDED'}; {result['errors']} errors")
    if args.json:
        print(json.dumps(result))
        print(summary, file=sys.stderr)
    else:
        print(summary)
    if result["errors"]:
        print(f"error: {result['errors']} questions failed, first: {result['error_examples'][0]['error']}", file=sys.stderr)
    if not g["ok"]:
        print(f"error: RSS grew {g['growth_mb']:+.0f} MB after warm-up, more than the bound of {g['bound_mb']:.0f} MB",
              file=sys.stderr)
    return 0 if g["ok"] and not result["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
