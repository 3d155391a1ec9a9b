"""The ``sectionrag`` command line: ingest, sections, ask, delete, eval, bench (contract in ARCHITECTURE.md).

With ``--json`` each command prints exactly one JSON object on stdout; progress and logs go to
stderr. Errors are one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

EXIT_ERROR = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not a usage dump
        print(f"sectionrag: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return n


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sectionrag", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--store", required=True, type=Path, help="store folder (SQLite sections + FAISS passages)")
        p.add_argument("--config", type=Path, help="TOML file with [ingest], [index], [retrieve], [synthesize], [verify]")
        p.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    p = sub.add_parser("ingest", help="read, sectionize, embed and store documents")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders (walked)")
    common(p)
    p.add_argument("--workers", type=_positive, help="worker processes (ingest.workers)")
    p.add_argument("--engine", choices=["local", "ray"], help="ingest.engine")

    p = sub.add_parser("sections", help="list stored sections")
    common(p)
    p.add_argument("--doc", help="only this document's sections")
    p.add_argument("--with-text", action="store_true", help="include each section's text")

    p = sub.add_parser("ask", help="answer a question with cited, verified claims")
    p.add_argument("question", metavar="QUESTION")
    common(p)
    p.add_argument("--doc", action="append", dest="docs", metavar="DOC_ID", help="restrict to this document (repeatable)")
    p.add_argument("--llm", choices=["local", "openai", "extractive"], help="answer writer (synthesize.llm)")
    p.add_argument("--top-sections", type=_positive, help="sections to retrieve (retrieve.top_sections)")
    p.add_argument("--kind", action="append", dest="kinds", choices=["filing", "contract", "ehr", "note", "generic"],
                   help="only documents of this kind (repeatable)")
    p.add_argument("--date-from", default="", metavar="YYYY-MM-DD", help="EHR sections dated on or after this day")
    p.add_argument("--date-to", default="", metavar="YYYY-MM-DD", help="EHR sections dated on or before this day")

    p = sub.add_parser("delete", help="remove documents from a store")
    p.add_argument("doc_ids", nargs="+", metavar="DOC_ID")
    common(p)

    p = sub.add_parser("eval", help="evaluate sectionrag against a chunked baseline on a dataset suite")
    p.add_argument("--suite", required=True, choices=["cuad", "financebench", "contractnli", "synthea", "faithbench", "all"])
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="datasets folder laid out like ../shared/data")
    p.add_argument("--limit", type=_positive, help="a seeded sample of N items per suite (default: every item)")
    p.add_argument("--out", type=Path, required=True, help="report folder (report.md, report.html, metrics.json)")
    p.add_argument("--llm", choices=["local", "openai", "extractive"], default="local", help="answer writer for every system")
    p.add_argument("--systems", help="comma-separated systems (default: sectionrag, chunk_baseline and the ablations)")
    p.add_argument("--store", type=Path, help="an existing store holding the suite's documents (nothing is ingested into it)")
    p.add_argument("--store-root", type=Path, help="where the evaluation ingests its own stores (default OUT/stores)")
    p.add_argument("--judge", choices=["local", "openai"], default="local", help="hallucination judge")
    p.add_argument("--seed", type=int, help="sampling seed for --limit (default: the harness's, as python -m eval.harness)")
    p.add_argument("--shard", type=_shard, metavar="K/N",
                   help="answer only part K of N (run the N parts at once, then once without --shard for the report)")
    p.add_argument("--parts", type=_positive, default=1, metavar="N",
                   help="answer in N processes at once (the --shard parts, each with 1/N of the CPUs and its own "
                        "models in memory), then report")
    p.add_argument("--batch", type=_positive, default=1, metavar="N",
                   help="answer N questions at a time, the writer's calls batched (local or openai writer)")
    p.add_argument("--config", type=Path, help="TOML file the pipeline rows start from")
    p.add_argument("--report-only", action="store_true",
                   help="answer nothing: report the items every system already has an answer for in OUT")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    p = sub.add_parser("bench", help="benchmarks")
    bench = p.add_subparsers(dest="bench", required=True, parser_class=_Parser)
    p = bench.add_parser("encoder", help="the long encoder on each attention backend against HF Longformer, BigBird and dense BERT")
    p.add_argument("--lengths", default="1024,4096,16384", help="comma-separated token counts")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--impls", help="comma-separated rows (default: every available one)")
    p.add_argument("--repeats", type=_positive, default=3)
    p.add_argument("--dtype", help="comma-separated precisions every row runs in: float32, bfloat16 "
                                   "(default float32 on the CPU, bfloat16 on CUDA)")
    p.add_argument("--threads", type=_positive, help="torch CPU threads per row")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p = bench.add_parser("writer", help="the local answer writer with our attention against transformers' SDPA")
    p.add_argument("--tokens", default="1000,3000", help="comma-separated prompt lengths in tokens")
    p.add_argument("--batch", default="1,4", help="comma-separated batch sizes")
    p.add_argument("--dtype", default="bfloat16,float32", help="comma-separated: float32, bfloat16")
    p.add_argument("--new-tokens", type=_positive, default=96)
    p.add_argument("--repeats", type=_positive, default=2)
    p.add_argument("--threads", type=_positive, default=1, help="torch CPU threads")
    p.add_argument("--contracts", help="a folder of contract .txt files (default: CUAD's in ../shared/data)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return parser


def _config(args: argparse.Namespace):
    from pipeline.config import PipelineConfig

    cfg = PipelineConfig.from_toml(args.config) if args.config else PipelineConfig()
    return cfg.replace(
        ingest={"workers": getattr(args, "workers", None), "engine": getattr(args, "engine", None)},
        retrieve={"top_sections": getattr(args, "top_sections", None)},
        synthesize={"llm": getattr(args, "llm", None)},
    )


def _emit(args: argparse.Namespace, obj: dict, human: str) -> None:
    out = args.stdout
    out.write((json.dumps(obj, ensure_ascii=False) if args.json else human) + "\n")
    out.flush()


def cmd_ingest(args: argparse.Namespace) -> int:
    from pipeline.api import Pipeline

    with Pipeline(args.store, _config(args)) as p:
        report = p.ingest(args.paths, progress=True)
    obj = {"documents": report.documents, "sections": report.sections, "passages": report.passages,
           "pages": report.pages, "seconds": report.seconds, "skipped": report.skipped,
           "failed": [{"path": f.path, "error": f.error} for f in report.failed]}
    lines = [f"ingested {report.documents} documents: {report.sections} sections, {report.passages} passages, "
             f"{report.pages} pages in {report.seconds:.1f}s; {report.skipped} unchanged skipped"]
    lines += [f"failed: {f.path}: {f.error}" for f in report.failed]
    _emit(args, obj, "\n".join(lines))
    return 0


def cmd_sections(args: argparse.Namespace) -> int:
    from pipeline.api import Pipeline

    with Pipeline(args.store, _config(args)) as p:
        sections = p.sections(args.doc)
    rows = []
    for s in sections:
        row = {"id": s.id, "doc_id": s.doc_id, "path": list(s.path), "title": s.title, "start": s.start, "end": s.end,
               "pages": list(s.pages), "tokens": s.tokens}
        if args.with_text:
            row["text"] = s.text
        rows.append(row)
    human = "\n".join(f"{s.doc_id}\t{' › '.join(s.path)}\t[{s.start}:{s.end}]\tpages {s.pages[0]}-{s.pages[-1]}\t{s.tokens} tokens"
                      + (f"\n{s.text}\n" if args.with_text else "") for s in sections)
    _emit(args, {"sections": rows}, human or "no sections")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from pipeline.api import Pipeline
    from pipeline.retrieve import SectionFilter

    filters = None
    if args.kinds or args.date_from or args.date_to:
        filters = SectionFilter(kinds=tuple(args.kinds or ()), date_from=args.date_from, date_to=args.date_to)
    with Pipeline(args.store, _config(args)) as p:
        answer = p.ask(args.question, args.docs, top_sections=args.top_sections, filters=filters)
    obj = {
        "answer": answer.text, "abstained": answer.abstained, "support": round(answer.support, 4),
        "citations": [{"doc_id": c.doc_id, "section_id": c.section_id, "start": c.start, "end": c.end, "quote": c.quote}
                      for c in answer.citations],
        "sections": [{"id": s.id, "doc_id": s.doc_id, "path": list(s.path), "tokens": s.tokens, "score": round(s.score, 6)}
                     | ({"via": s.via} if s.via else {}) for s in answer.sections],
        "timings": dict(answer.timings),
    }
    lines = [answer.text, ""]
    for i, c in enumerate(answer.citations, 1):
        quote = " ".join(c.quote.split())
        lines.append(f"[{i}] {c.doc_id} [{c.start}:{c.end}] \"{quote[:300]}{'…' if len(quote) > 300 else ''}\"")
    lines.append(f"(support {answer.support:.2f}; {dict(answer.timings).get('total', 0.0):.1f}s)")
    _emit(args, obj, "\n".join(lines))
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from pipeline.api import Pipeline

    with Pipeline(args.store, _config(args)) as p:
        removed = p.delete(args.doc_ids)
    _emit(args, {"deleted": list(args.doc_ids), "passages": removed},
          f"deleted {len(args.doc_ids)} document(s) and {removed} passages")
    return 0


def _shard(text: str) -> tuple[int, int]:
    from eval.harness import parse_shard

    return parse_shard(text)


def cmd_eval(args: argparse.Namespace) -> int:
    from eval.datasets import SEED
    from eval.harness import run_eval, shard_text

    result = run_eval(args.suite, args.data, args.out, limit=args.limit, llm=args.llm,
                      systems=args.systems.split(",") if args.systems else None, progress=True,
                      store=args.store, store_root=args.store_root, judge=args.judge,
                      seed=SEED if args.seed is None else args.seed,
                      shard=args.shard, config=_config(args) if args.config else None, batch=args.batch,
                      report_only=args.report_only, parts=args.parts)
    if "shard" in result:
        _emit(args, result, shard_text(result))
        return 0
    lines = [f"suite {result['suite']}: report {result['report']}"]
    for name, metrics in result["systems"].items():
        shown = {k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        lines.append(f"{name}: " + ", ".join(f"{k}={v:.3g}" for k, v in list(shown.items())[:8]))
    _emit(args, result, "\n".join(lines))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if args.bench == "writer":
        from graphs.bench_writer import _CONTRACTS, bench_writer, table

        result = bench_writer(args.tokens, args.batch, args.dtype, args.new_tokens, args.repeats, args.threads,
                              Path(args.contracts) if args.contracts else _CONTRACTS)
        _emit(args, result, table(result))
        return 0
    from encoders.bench import bench_encoder

    try:
        lengths = [int(x) for x in args.lengths.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--lengths must be comma-separated token counts, not {args.lengths!r}") from None
    result = bench_encoder(lengths, args.device, args.impls.split(",") if args.impls else None,
                           repeats=args.repeats, progress=True, threads=args.threads,
                           dtypes=args.dtype.split(",") if args.dtype else None)
    lines = [f"device {result['device']}"]
    lines += [f"{r['impl']:28s} {r['length']:>7d} tokens  {r['dtype']:>8s}  {r['ms']:10.1f} ms  {r['tokens_per_s']:10.0f} tok/s  "
              f"{r['peak_mb']:8.0f} MB" for r in result["rows"]]
    _emit(args, result, "\n".join(lines))
    return 0


def _quiet_libraries() -> None:
    # Library progress bars and warnings would interleave with ours on stderr; stdout stays clean for --json.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("SCARF_NO_ANALYTICS", "true")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_libraries()
    from graphs.llm import LLMError
    from ingest.errors import IngestError
    from pipeline.store import StoreError

    handlers = {"ingest": cmd_ingest, "sections": cmd_sections, "ask": cmd_ask, "delete": cmd_delete, "eval": cmd_eval,
                "bench": cmd_bench}
    args.stdout = sys.stdout
    try:
        # Anything a library prints on stdout would corrupt the one JSON object: send it to stderr.
        with contextlib.redirect_stdout(sys.stderr):
            return handlers[args.command](args)
    except (StoreError, IngestError, LLMError, ValueError, RuntimeError, OSError) as exc:
        print(f"sectionrag: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("sectionrag: interrupted; what was stored is kept, re-run to finish", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
