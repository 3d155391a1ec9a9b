"""``sectionrag bench reader``: how long the section reader takes on a long section, trained against untrained.

Rows, each on one section of ``length`` tokens (real contract text, repeated to length) with one question, on
this process's CPU threads, median of ``repeats`` after a warm-up:

* ``untrained-encoder`` — ``LongEncoder.encode``: all six layers with the question as global tokens (the
  untrained path's reading, what ``sectionrag bench encoder`` times per backend);
* ``trained-cold`` — the trained reader on a section it has not seen: the question-free lower layers, then
  the upper layers with the question, and the unit and verdict heads;
* ``trained-warm`` — the same section again with another question: only the upper layers and heads (the lower
  layers' states are cached per section, as for every question after the first on a section).

With ``--train``, one training step instead (forward and backward, ``encoders.train_reader``'s loss shape) on a
piece of each length, for each differentiable attention backend: the upper layers over cached lower states (what
training runs) and, for comparison, all six layers (what it would run without the cache).

    python -m encoders.bench_reader --lengths 4096,16384 --json
    python -m encoders.bench_reader --train --lengths 1024,4096 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

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
        key = f"warm-{length}"  # one key per section: a key names one text in the reader's cache
        reader.read(text, units, QUESTIONS[1], key=key)  # the section's lower layers, cached
        for name, fn in timed.items():
            times = []
            for i in range(repeats):
                t0 = time.perf_counter()
                fn(QUESTIONS[i % len(QUESTIONS)], key)
                times.append(time.perf_counter() - t0)
            ms = statistics.median(times) * 1000
            rows.append({"row": name, "length": length, "units": len(units), "ms": round(ms, 1),
                         "tokens_per_s": round(length / ms * 1000, 1)})
        # the warm row must have read this section's cached states, not another's: same scores as cold
        cold, warm = reader.read(text, units, QUESTIONS[0]), reader.read(text, units, QUESTIONS[0], key=key)
        rows[-1]["matches_cold"] = bool(np.allclose(cold.unit_scores, warm.unit_scores, atol=1e-4))
    return {"machine": cpu(), "impl": impl, "rows": rows}


TRAINABLE = ("blocked", "reference", "flex")
"""Attention backends with a backward pass on the CPU."""


def bench_train_step(lengths: list[int], repeats: int = 3, impls: tuple[str, ...] = TRAINABLE,
                     source: Path | None = None) -> dict:
    import torch
    from transformers import AutoTokenizer

    from encoders.embedder import default_model_path
    from encoders.reader_model import ReaderArgs, ReaderModel
    from pipeline.host import cpu

    base = default_model_path()
    tokenizer = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
    tokenizer.model_max_length = 1 << 20
    rows = []
    for impl in impls:
        torch.manual_seed(0)
        model = ReaderModel.from_minilm(base, ReaderArgs(impl=impl, max_tokens=max(lengths) + 128))
        model.train()
        q = torch.tensor([tokenizer(QUESTIONS[0])["input_ids"]])
        for length in lengths:
            text = _text(tokenizer, length, source)
            ids = torch.tensor([[tokenizer.cls_token_id, *tokenizer(text, add_special_tokens=False)["input_ids"],
                                 tokenizer.sep_token_id]])
            n_units = max(1, length // 32)
            units = torch.zeros(n_units, ids.shape[1])
            for i in range(n_units):
                units[i, 1 + i * 32: 1 + (i + 1) * 32] = 1 / 32
            labels = (torch.arange(n_units) % 7 == 0).float()

            low = model.lower(ids)
            batch = (model, q, units, labels)
            for name, fn in (("train-upper-cached", lambda b=batch, low=low: _train_step(b, low)),
                             ("train-all-layers", lambda b=batch, ids=ids: _train_step(b, ids=ids))):
                try:
                    fn()  # warm (and the first call's compilation, for flex)
                    times = []
                    for _ in range(repeats):
                        t0 = time.perf_counter()
                        fn()
                        times.append(time.perf_counter() - t0)
                except Exception as exc:  # a backend without a CPU backward: say so in its row
                    rows.append({"row": name, "impl": impl, "length": length, "error": f"{type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0][:160]}"})
                    continue
                ms = statistics.median(times) * 1000
                rows.append({"row": name, "impl": impl, "length": length, "ms": round(ms, 1),
                             "tokens_per_s": round(length / ms * 1000, 1)})
    return {"machine": cpu(), "impl": ",".join(impls), "rows": rows}


def _train_step(batch, low=None, ids=None) -> None:
    """One forward and backward pass of the reader's loss: over cached lower states ``low``, or from the token
    ``ids`` through every layer (the lower ones given gradients for the occasion)."""
    import torch
    import torch.nn.functional as F

    model, q, units, labels = batch
    frozen = list(model.frozen_parameters()) if low is None else []
    for p in frozen:
        p.requires_grad_(True)
    try:
        if low is None:
            low = model.lower(ids, grad=True)
        unit_logits, nli = model(q, low, units)
        loss = F.binary_cross_entropy_with_logits(unit_logits, labels) + F.cross_entropy(nli.unsqueeze(0),
                                                                                         torch.tensor([0]))
        loss.backward()
        model.zero_grad()
    finally:
        for p in frozen:
            p.requires_grad_(False)


def table(result: dict) -> str:
    lines = [f"machine {result['machine']}, backend {result['impl']}"]
    for r in result["rows"]:
        name = f"{r['row']}/{r['impl']}" if "impl" in r else r["row"]
        if "error" in r:
            lines.append(f"{name:30s} {r['length']:>7d} tokens  {r['error']}")
            continue
        size = f"{r['units']:>5d} units" if "units" in r else ""
        lines.append(f"{name:30s} {r['length']:>7d} tokens {size:>11s} {r['ms']:10.1f} ms {r['tokens_per_s']:10.0f} tok/s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m encoders.bench_reader", description=__doc__.splitlines()[0])
    p.add_argument("--lengths", default="4096,16384")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--weights", help="reader weights folder (default: the shipped data/reader)")
    p.add_argument("--source", type=Path, help="a text file to build the sections from")
    p.add_argument("--train", action="store_true", help="time one training step per differentiable backend")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    lengths = [int(x) for x in args.lengths.split(",")]
    result = (bench_train_step(lengths, args.repeats, source=args.source) if args.train
              else bench_reader(lengths, args.repeats, args.weights, args.source))
    print(json.dumps(result) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
