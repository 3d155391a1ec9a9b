"""The systems the harness compares, side by side on one store, one embedder and one answer writer.

* ``sectionrag`` — the pipeline as configured (``PipelineConfig()`` defaults);
* ``chunk_baseline`` — top-k 512-token chunks straight to the same writer (``eval/baseline.py``);
* one ablation row per stage that can be switched off, each the pipeline with that one stage off:
  ``sectionrag-no-verify`` (``verify.enabled = False``), ``sectionrag-no-sections`` (no section
  selection: every section a retrieved passage belongs to is kept, so the writer's evidence comes from
  the best passages store-wide), and — when the configuration has the switch — ``sectionrag-no-xref``
  (``retrieve.expand_references = False``), ``sectionrag-no-digest`` (``summarize.enabled = False``: the
  evidence is the sentences of the best passages) and ``sectionrag-no-encoder`` (the digest without the
  long encoder: sentences scored on their own embeddings only, ``summarize.encoder_weight = 0``);
* variants, run only when named in ``--systems``: ``sectionrag-passages12`` (the digest off and 12
  passage sentences, as many as the digest hands the writer: whether the digest beats a larger
  passage pool at the same size), ``sectionrag-trained`` (the digest by the trained reader,
  ``summarize.scorer = "trained"``), ``sectionrag-untyped`` (no typed answers, ``answers.typed = []``: every
  question goes to the writer, as before typed answers);
* ``sectionrag-check`` (ContractNLI only, in its default run when trained reader weights are there): the
  hypothesis decided by ``Pipeline.check`` — the label, and every unit of the NDA scored as evidence.

Each run returns the answer together with what retrieval selected and what the writer was given,
because the hallucination judge grades claims against the text the system actually had.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from eval.datasets import Item
from pipeline import Answer, Pipeline, PipelineConfig, ScoredUnit

BASELINE_K = 5
"""Chunks handed to the writer by the baseline (5 × 512 tokens ≈ the pipeline's evidence budget and more)."""

Changes = dict[str, dict[str, object]]
"""stage → {field: value}, relative to the default configuration."""

ABLATIONS: dict[str, Changes] = {
    "sectionrag-no-verify": {"verify": {"enabled": False}},
    "sectionrag-no-sections": {"retrieve": {"top_sections": 1_000_000, "token_budget": 1_000_000_000}},
    "sectionrag-no-xref": {"retrieve": {"expand_references": False}},
    "sectionrag-no-digest": {"summarize": {"enabled": False}},
    "sectionrag-no-encoder": {"summarize": {"encoder_weight": 0.0}},
}
"""One row per stage that can be switched off; in every default run."""

VARIANTS: dict[str, Changes] = {
    "sectionrag-passages12": {"summarize": {"enabled": False}, "retrieve": {"evidence_sentences": 12}},
    "sectionrag-trained": {"summarize": {"scorer": "trained"}},
    "sectionrag-untyped": {"answers": {"typed": ()}},
}
CHECK = "sectionrag-check"
"""Other configurations worth a row; run when named."""


def _has_fields(cfg: PipelineConfig, changes: Changes) -> bool:
    return all(hasattr(cfg, stage) and set(fields) <= {f.name for f in dataclasses.fields(getattr(cfg, stage))}
               for stage, fields in changes.items())


def available_systems(base: PipelineConfig | None = None, *, variants: bool = False) -> list[str]:
    """The systems of a default run (ablations only for switches the configuration has); with
    ``variants``, every system this checkout can run."""
    base = base or PipelineConfig()
    extra = {**ABLATIONS, **(VARIANTS if variants else {})}
    return ["sectionrag", "chunk_baseline", *(n for n, ch in extra.items() if _has_fields(base, ch)),
            *([CHECK] if variants else [])]


def system_config(name: str, base: PipelineConfig) -> PipelineConfig:
    if name in ("sectionrag", CHECK):
        return base
    return base.replace(**{**ABLATIONS, **VARIANTS}[name])


@dataclass(frozen=True)
class Span:
    doc_id: str
    start: int
    end: int
    text: str = ""


@dataclass(frozen=True)
class Run:
    """One question answered by one system."""

    answer: Answer
    retrieved: tuple[Span, ...]
    """What retrieval selected (sections for sectionrag, chunks for the baseline), best first."""
    context: tuple[Span, ...]
    """What the answer writer was given, with its text (evidence sentences, or chunks)."""
    seconds: float
    label: str | None = None
    """The system's verdict on a hypothesis, when it decides one directly (``sectionrag-check``)."""
    units: tuple[ScoredUnit, ...] = ()
    """Units the system scored as evidence (``sectionrag-check``: every unit of the document)."""
    scorers: dict[str, tuple[ScoredUnit, ...]] = field(default_factory=dict)
    """Per evidence scorer, the units of the sections retrieval selected, scored (``sectionrag``)."""


class PipelineSystem:
    """The sectionrag flow with one configuration: ``Pipeline.ask(..., trace=True)``, so the evidence shows."""

    def __init__(self, name: str, pipeline: Pipeline, scorers: Sequence[str] = ()) -> None:
        self.name = name
        self.pipeline = pipeline
        self.scorers = tuple(scorers)
        """Evidence scorers compared on the sections this system retrieves (after the answer is timed)."""

    def run(self, item: Item) -> Run:
        t0 = time.perf_counter()
        answer = self.pipeline.ask(item.question, [item.doc_id], trace=True)
        seconds = time.perf_counter() - t0
        retrieved = tuple(Span(s.doc_id, s.start, s.end) for s in answer.sections)
        context = tuple(Span(ev.doc_id, ev.start, ev.end, ev.text) for ev in answer.trace.evidence)
        best = answer.sections[: self.pipeline.config.summarize.max_sections]
        scored = {sc: tuple(self.pipeline.score_units(item.question, best, scorer=sc)) for sc in self.scorers}
        # a yes-no question answered by the reader's verdict decides its label directly
        label = answer.value if answer.kind == "yesno" and isinstance(answer.value, str) else None
        return Run(answer=dataclasses.replace(answer, trace=None), retrieved=retrieved, context=context,
                   seconds=seconds, scorers=scored, label=label)

    def reading(self) -> dict | None:
        """What its long encoder read for the digest in this process (None when it read nothing)."""
        read = self.pipeline.reading()
        if not read["tokens"]:
            return None
        return {**read, "seconds": round(read["seconds"], 3),
                "tokens_per_s": read["tokens"] / read["seconds"] if read["seconds"] else None}

    def close(self) -> None:
        self.pipeline.close()


class BaselineSystem:
    name = "chunk_baseline"

    def __init__(self, pipeline: Pipeline, llm: str, k: int = BASELINE_K, progress: bool = False) -> None:
        from eval.baseline import ChunkBaseline

        self.baseline = ChunkBaseline.open(pipeline, progress=progress)
        self.llm, self.k = llm, k

    def run(self, item: Item) -> Run:
        t0 = time.perf_counter()
        answer, chunks = self.baseline.answer_with_chunks(item.question, self.k, self.llm, [item.doc_id])
        spans = tuple(Span(c.doc_id, c.start, c.end, c.text) for c in chunks)
        return Run(answer=answer, retrieved=spans, context=spans, seconds=time.perf_counter() - t0)

    def reading(self) -> dict | None:
        return None

    def close(self) -> None:
        self.baseline.close()


class CheckSystem:
    """``Pipeline.check`` on a hypothesis (ContractNLI: the item's gold hypothesis text) over its document."""

    name = CHECK

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def run(self, item: Item) -> Run:
        t0 = time.perf_counter()
        verdict = self.pipeline.check(item.answers[0], [item.doc_id])
        seconds = time.perf_counter() - t0
        text = f"{verdict.label}: " + " ".join(" ".join(c.quote.split()) for c in verdict.evidence)
        answer = Answer(text=text, citations=verdict.evidence, abstained=verdict.label == "NotMentioned",
                        support=verdict.confidence, sections=verdict.sections)
        spans = tuple(Span(c.doc_id, c.start, c.end, c.quote) for c in verdict.evidence)
        return Run(answer=answer, retrieved=tuple(Span(s.doc_id, s.start, s.end) for s in verdict.sections),
                   context=spans, seconds=seconds, label=verdict.label, units=verdict.units)

    def reading(self) -> dict | None:
        return None

    def close(self) -> None:
        self.pipeline.close()


class Systems:
    """The named systems over one store, sharing one embedder and one loaded answer writer.

    Each pipeline row is ``base.with_config(...)`` of one ``Pipeline``: the same MiniLM weights with a
    sentence cache of its own (no system's latency benefits from sentences another embedded for the same
    question) and the same writer. The baseline uses its own 512-token copy of the embedder.

    >>> with Systems(["sectionrag", "chunk_baseline"], Path("store"), "extractive") as systems:
    ...     run = systems["sectionrag"].run("Who are the parties?", None)
    """

    def __init__(self, names: Sequence[str], store: Path, llm: str, *, base: PipelineConfig | None = None,
                 progress: bool = False, scorers: Sequence[str] = ()) -> None:
        base = (base or PipelineConfig()).replace(synthesize={"llm": llm})
        known = available_systems(base, variants=True)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"unknown system(s) {', '.join(unknown)}; this checkout has {', '.join(known)}")
        self.base = Pipeline(store, base)
        self.runners: dict[str, PipelineSystem | BaselineSystem] = {}
        for name in names:
            if name == "chunk_baseline":
                self.runners[name] = BaselineSystem(self.base, llm, progress=progress)
            elif name == CHECK:
                self.runners[name] = CheckSystem(self.base.with_config(base))
            else:
                self.runners[name] = PipelineSystem(name, self.base.with_config(system_config(name, base)),
                                                    scorers if name == "sectionrag" else ())

    def __getitem__(self, name: str) -> PipelineSystem | BaselineSystem:
        return self.runners[name]

    def map(self, fn, tasks, batch: int) -> list:
        """``[fn(t) for t in tasks]``, ``batch`` at a time with the writer's calls batched (``Pipeline.map_batched``)."""
        return self.base.map_batched(fn, tasks, batch)

    @property
    def batch_sizes(self) -> list[int]:
        return self.base.batch_sizes

    @property
    def embedder(self):
        """The systems' shared MiniLM."""
        return self.base.embedder

    def baseline_index(self) -> dict | None:
        """The baseline's chunk-index build figures, if opening it built the index."""
        runner = self.runners.get("chunk_baseline")
        b = runner.baseline.build_stats if runner is not None else None
        return {**b, "chunks_per_s": b["embedded"] / b["seconds"] if b["seconds"] else None} if b else None

    def reading(self) -> dict:
        """Per pipeline system, what its long encoder read for the digest (systems that read nothing left out)."""
        return {name: read for name, r in self.runners.items() if (read := r.reading())}

    def close(self) -> None:
        for r in self.runners.values():
            r.close()
        self.base.close()

    def __enter__(self) -> Systems:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
