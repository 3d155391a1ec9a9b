"""sectionrag: question answering over long documents with whole-section retrieval and cited answers.

The public API is ``Pipeline`` (imported lazily so that importing a submodule stays cheap).
"""

from __future__ import annotations

__all__ = ["Pipeline", "PipelineConfig"]


def __getattr__(name: str):
    if name == "Pipeline":
        from pipeline.api import Pipeline

        return Pipeline
    if name == "PipelineConfig":
        from pipeline.config import PipelineConfig

        return PipelineConfig
    raise AttributeError(name)
