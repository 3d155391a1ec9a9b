"""``sectionrag bench reader``: how long the section reader takes on a long section, trained against untrained.

Rows, each on one section of ``length`` tokens (real contract text, repeated to length) with one question, on
this process's CPU threads, median of ``repeats`` after a warm-up:

* ``untrained-encoder`` — ``LongEncoder.encode``: all six layers with the question as global tokens (the
  untrained path's reading, what ``sectionrag bench encoder`` times per backend);
* ``trained-cold`` — the trained reader on a section it has not seen: the question-free lower layers, then
  the upper layers with the question, and the unit and verdict heads;
* ``trained-warm`` — the same section again with another question: only the upper layers and heads (the lower
  layers' states are cached per section, as for every question after the first on a section).

    python -m encoders.bench_reader --lengths 4096,16384 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

QUESTIONS = ("How can the agreement be terminated?", "Which law governs the agreement?",
             "Who owns the intellectual property?", "What are the payment terms?")


def _text(tokenizer, length: int, source: Path | None) -> str:
    base = source.read_text() if source and source.is_file() else (
        "Either party may terminate this Agreement upon thirty days written notice to the other party. "
        "This Agreement shall be governed by the laws of the State of New York. ")
    text = base
    while len(tokenizer(text, add_special_tokens=False)["input_ids"]) < length:
        text += "\n" + base
    ids = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    return text[: ids[length - 1][1]]


def bench_reader(lengths: list[int], repeats: int = 3, weights: str | None = None, source: Path | None = None,
                 impl: str = "auto") -> dict:
    from encoders.long_encoder import LongEncoder
    from encoders.reader import EvidenceReader
    from encoders.units import section_units
    from pipeline.host import cpu

    reader = EvidenceReader(weights, impl=impl, cache_sections=0)
    encoder = LongEncoder(max_tokens=max(lengths) + 128, impl=impl)
    rows = []
    for length in lengths:
        text = _text(reader.tokenizer, length, source)
        units = [(u.start, u.end) for u in section_units(text)]
        encoder.encode(text[:2000], query=QUESTIONS[0])  # warm
        reader.read(text[:2000], [(0, 10)], QUESTIONS[0])
        timed = {"untrained-encoder": lambda q, k, text=text: encoder.encode(text, query=q),
                 "trained-cold": lambda q, k, text=text, units=units: reader.read(text, units, q),
                 "trained-warm": lambda q, k, text=text, units=units: reader.read(text, units, q, key=k)}
        reader.cache_sections = 1
        reader.read(text, units, QUESTIONS[1], key="warm")  # the section's lower layers, cached
        for name, fn in timed.items():
            times = []
            for i in range(repeats):
                t0 = time.perf_counter()
                fn(QUESTIONS[i % len(QUESTIONS)], "warm")
                times.append(time.perf_counter() - t0)
            ms = statistics.median(times) * 1000
            rows.append({"row": name, "length": length, "units": len(units), "ms": round(ms, 1),
                         "tokens_per_s": round(length / ms * 1000, 1)})
    return {"machine": cpu(), "impl": impl, "rows": rows}


def table(result: dict) -> str:
    lines = [f"machine {result['machine']}, backend {result['impl']}"]
    lines += [f"{r['row']:18s} {r['length']:>7d} tokens {r['units']:>5d} units {r['ms']:10.1f} ms "
              f"{r['tokens_per_s']:10.0f} tok/s" for r in result["rows"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m encoders.bench_reader", description=__doc__.splitlines()[0])
    p.add_argument("--lengths", default="4096,16384")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--weights", help="reader weights folder (default: the shipped data/reader)")
    p.add_argument("--source", type=Path, help="a text file to build the sections from")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    result = bench_reader([int(x) for x in args.lengths.split(",")], args.repeats, args.weights, args.source)
    print(json.dumps(result) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
