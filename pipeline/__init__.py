"""sectionrag: question answering over long documents with whole-section retrieval and cited answers.

The public API: ``Pipeline`` and ``PipelineConfig``, the records in ``pipeline.types`` (re-exported here),
the shared text rules in ``pipeline.text``, ``StoreLock`` for jobs sharing a store folder, ``cpu()`` (the
machine a measurement came from), and two components for measuring against: ``Embedder`` (the shipped
sentence embedder) and ``verify_claims`` (the claim verifier's support scores). ``Pipeline``,
``PipelineConfig``, ``Embedder`` and ``verify_claims`` are imported lazily, so importing a submodule stays
cheap.
"""

from __future__ import annotations

from pipeline.host import cpu
from pipeline.locks import StoreLock
from pipeline.types import (
    ABSTAIN_TEXT,
    NLI_LABELS,
    UNIT_SCORERS,
    Answer,
    Citation,
    ClaimCheck,
    Document,
    Draft,
    Evidence,
    GraphStep,
    IngestReport,
    IngestWarning,
    Passage,
    ScoredSection,
    ScoredUnit,
    Section,
    SectionFilter,
    Trace,
    Verdict,
)

__all__ = [
    "ABSTAIN_TEXT", "NLI_LABELS", "UNIT_SCORERS", "Answer", "Citation", "ClaimCheck", "Document", "Draft", "Embedder", "Evidence", "GraphStep",
    "IngestReport", "IngestWarning", "Passage", "Pipeline", "PipelineConfig", "ScoredSection", "ScoredUnit", "Section", "SectionFilter", "StoreLock",
    "Trace", "Verdict", "cpu", "trained_reader_available", "trained_reader_documents", "verify_claims",
]


def _refuse_a_second_kernels_package() -> None:
    """Fail once, clearly, where the Hugging Face ``kernels`` distribution is installed beside sectionrag.

    Its import name is the same as this project's own ``kernels/`` package, so whichever comes first on
    ``sys.path`` hides the other: transformers then fails to load any model (``cannot import name
    'CUDAProperties' from 'kernels'``), or the encoders cannot find the sparse-attention backends.
    """
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("kernels")
    except PackageNotFoundError:
        return
    raise ImportError(
        f"{dist.locate_file('')}: the 'kernels' package {dist.version} (Hugging Face hub kernels) is installed "
        "in this environment; its import name is the same as sectionrag's own 'kernels' package, so one hides "
        "the other. Install sectionrag in an environment without it (pip uninstall kernels); transformers 5.25 "
        "and later require it, so keep to sectionrag's own requirement transformers<5.25")


_refuse_a_second_kernels_package()


def __getattr__(name: str):
    if name == "Pipeline":
        from pipeline.api import Pipeline

        return Pipeline
    if name == "PipelineConfig":
        from pipeline.config import PipelineConfig

        return PipelineConfig
    if name == "Embedder":
        from encoders.embedder import Embedder

        return Embedder
    if name == "trained_reader_available":
        from pipeline.api import trained_reader_available

        return trained_reader_available
    if name == "trained_reader_documents":
        from pipeline.api import trained_reader_documents

        return trained_reader_documents
    if name == "verify_claims":
        from graphs.verifier import verify_claims

        return verify_claims
    raise AttributeError(name)
