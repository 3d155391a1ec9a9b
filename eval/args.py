"""The evaluation's command-line arguments: one parser for ``sectionrag eval`` and ``python -m eval.harness``.

``add_arguments(parser)`` adds every flag (with one set of defaults) to a parser; ``options(args)`` turns the
parsed flags into the keyword arguments of ``eval.harness.run_eval``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from eval.datasets import SEED, SUITES

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
"""``../shared/data`` beside the repository: the datasets laid out as their README describes."""
WRITERS = ("local", "openai", "extractive")
JUDGES = ("local", "openai")


def positive(value: str) -> int:
    """An ``argparse`` type: a whole number of at least 1."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return n


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` → ``(K, N)`` with 1 <= K <= N (an ``argparse`` type)."""
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shard must be K/N, e.g. 1/4, got {text!r}") from None
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"shard {text}: need 1 <= K <= N")
    return k, n


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--suite", required=True, choices=[*SUITES, "all"])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="datasets folder laid out like ../shared/data")
    p.add_argument("--limit", type=positive, help="a seeded sample of N items per suite (default: every item)")
    p.add_argument("--out", type=Path, required=True,
                   help="output folder (report.md, report.html, metrics.json, items.jsonl)")
    p.add_argument("--llm", choices=WRITERS, default="local", help="answer writer for every system")
    p.add_argument("--systems", help="comma-separated (default: sectionrag, chunk_baseline and every ablation this "
                                     "checkout has, e.g. sectionrag-no-verify, sectionrag-no-sections; variants such as "
                                     "sectionrag-passages12 run only when named)")
    p.add_argument("--store", type=Path, help="an existing store holding the suite's documents (not ingested into)")
    p.add_argument("--store-root", type=Path, help="where the evaluation ingests its own stores (default OUT/stores)")
    p.add_argument("--judge", default="local", choices=JUDGES, help="hallucination judge")
    p.add_argument("--seed", type=int, default=SEED, help="sampling seed for --limit")
    p.add_argument("--label", action="append", dest="labels", metavar="TEXT",
                   help="only the items whose dataset label contains TEXT (FinanceBench: numerical, "
                        "metrics-generated; Synthea: medications, condition_onset; CUAD: a category); repeatable: "
                        "any of them")
    p.add_argument("--shard", type=parse_shard, metavar="K/N",
                   help="answer only part K of N (run the N parts at once, then once without --shard for the report)")
    p.add_argument("--parts", type=positive, default=1, metavar="N",
                   help="answer in N processes at once (the --shard parts, each with 1/N of the CPUs and its own "
                        "models in memory), then report")
    p.add_argument("--batch", type=positive, default=1, metavar="N",
                   help="answer N questions at a time, the writer's calls batched (local or openai writer)")
    p.add_argument("--config", type=Path, help="TOML file (as sectionrag reads) the pipeline rows start from")
    p.add_argument("--report-only", action="store_true",
                   help="answer nothing: report the items every system already has an answer for in OUT "
                        "(an interim look at a long or sharded run)")
    p.add_argument("--scorers", help="comma-separated evidence scorers compared on the sectionrag row's sections "
                                     "(lead, bm25, minilm, encoder, trained; default: all available; 'none': none)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return p


def options(args: argparse.Namespace) -> dict:
    """The parsed flags as ``run_eval`` keyword arguments (``suite``, ``data_dir`` and ``out_dir`` included)."""
    from pipeline import PipelineConfig

    return dict(suite=args.suite, data_dir=args.data, out_dir=args.out, limit=args.limit, llm=args.llm,
                systems=args.systems.split(",") if args.systems else None, progress=not args.no_progress,
                store=args.store, store_root=args.store_root, judge=args.judge, seed=args.seed, shard=args.shard,
                config=PipelineConfig.from_toml(args.config) if args.config else None, batch=args.batch,
                report_only=args.report_only, parts=args.parts, labels=tuple(args.labels or ()),
                scorers=None if args.scorers is None else [] if args.scorers == "none" else args.scorers.split(","))


def shard_text(result: dict) -> str:
    """The one-line summary of a ``--shard`` part's run."""
    return (f"{result['suite']} shard {result['shard']}: {result['items']} items, {result['answers']} answered now, "
            f"{result['recorded']} recorded in {result['file']}; run the same command without --shard for the report")
