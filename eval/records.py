"""``AnswerRecord``: one system's answer to one item, as the harness records it (a line of ``items.jsonl``).

A record is written as soon as its answer exists and is never recomputed, so a run can be stopped and
continued; it keeps what scoring and judging need without the texts (spans of the stored documents).
The JSON form is stable: records written by earlier versions load, and fields this version does not
know are kept.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

Span3 = list  # [doc_id, start, end]


@dataclass
class JudgeVerdicts:
    """The hallucination judge's verdicts on an answer, one entry per claim."""

    claims: list[str]
    unsupported: list[bool]
    scores: list[float]
    """Probability that each claim is unsupported by the text the system had (0–1)."""


@dataclass
class AnswerRecord:
    """One (system, writer, item) answer. ``error`` is set when the system failed on the item (then only the
    item's fields are meaningful); ``judge_error`` when the judge failed on it."""

    system: str
    llm: str
    item: str
    suite: str
    doc_id: str
    label: str
    impossible: bool
    answer: str = ""
    abstained: bool = False
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    citations: list[Span3] = field(default_factory=list)
    retrieved: list[Span3] = field(default_factory=list)
    """What retrieval selected (sections, or the baseline's chunks), best first."""
    context: list[Span3] = field(default_factory=list)
    """What the answer writer was given."""
    gold: list[list[int]] = field(default_factory=list)
    """The item's gold evidence as [start, end] spans of the stored document."""
    metrics: dict[str, Any] = field(default_factory=dict)
    verdict: str | None = None
    """The label a system decided directly (``sectionrag-check``)."""
    units: list[list] = field(default_factory=list)
    """[start, end, score] of every unit the system scored as evidence (``sectionrag-check``)."""
    scorer_coverage: dict[str, float | None] = field(default_factory=dict)
    """Per evidence scorer, the share of the gold evidence in its best units at the baseline's token budget."""
    unit_pr: list[list] = field(default_factory=list)
    """[score, relevant] of the trained scorer's best units (and every gold one): pooled into a PR curve."""
    judge: JudgeVerdicts | None = None
    judge_error: str | None = None
    error: str | None = None
    first_on_doc: bool | None = None
    """Whether this was the first question the answering process asked on its document (it pays for what
    later ones find cached)."""
    cpu: str | None = None
    shard: str | None = None
    """``"K/N"`` when a ``--shard`` part recorded it."""
    batch: int | None = None
    """The ``--batch`` it was answered with, when more than 1."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields of the JSON line this version does not know (kept when the file is rewritten)."""

    @property
    def key(self) -> str:
        return record_key(self.system, self.llm, self.item)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        """The JSON object of an ``items.jsonl`` line (optional fields only when set)."""
        out: dict[str, Any] = {"system": self.system, "llm": self.llm, "item": self.item, "suite": self.suite,
                               "doc_id": self.doc_id, "label": self.label, "impossible": self.impossible}
        if self.error is not None:
            out["error"] = self.error
        else:
            out.update({"answer": self.answer, "abstained": self.abstained, "seconds": self.seconds,
                        "timings": self.timings, "citations": self.citations, "retrieved": self.retrieved,
                        "context": self.context, "gold": self.gold, "metrics": self.metrics})
        if self.judge is not None:
            out["judge"] = dataclasses.asdict(self.judge)
        for name in ("verdict", "judge_error", "first_on_doc", "cpu", "shard", "batch"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        for name in ("units", "scorer_coverage", "unit_pr"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        return {**out, **self.extra}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AnswerRecord:
        known = {f.name for f in dataclasses.fields(cls)} - {"extra", "judge"}
        judge = data.get("judge")
        return cls(**{k: v for k, v in data.items() if k in known},
                   judge=JudgeVerdicts(**judge) if judge else None,
                   extra={k: v for k, v in data.items() if k not in known and k != "judge"})


def record_key(system: str, llm: str, item_id: str) -> str:
    return f"{system}|{llm}|{item_id}"
