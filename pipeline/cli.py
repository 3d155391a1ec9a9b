"""The ``sectionrag`` command line: ingest, sections, ask (see ARCHITECTURE.md for the contract).

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

    with Pipeline(args.store, _config(args)) as p:
        answer = p.ask(args.question, args.docs, top_sections=args.top_sections)
    obj = {
        "answer": answer.text, "abstained": answer.abstained, "support": round(answer.support, 4),
        "citations": [{"doc_id": c.doc_id, "section_id": c.section_id, "start": c.start, "end": c.end, "quote": c.quote}
                      for c in answer.citations],
        "sections": [{"id": s.id, "doc_id": s.doc_id, "path": list(s.path), "tokens": s.tokens, "score": round(s.score, 6)}
                     for s in answer.sections],
        "timings": dict(answer.timings),
    }
    lines = [answer.text, ""]
    for i, c in enumerate(answer.citations, 1):
        quote = " ".join(c.quote.split())
        lines.append(f"[{i}] {c.doc_id} [{c.start}:{c.end}] \"{quote[:300]}{'…' if len(quote) > 300 else ''}\"")
    lines.append(f"(support {answer.support:.2f}; {dict(answer.timings).get('total', 0.0):.1f}s)")
    _emit(args, obj, "\n".join(lines))
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

    handlers = {"ingest": cmd_ingest, "sections": cmd_sections, "ask": cmd_ask}
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
