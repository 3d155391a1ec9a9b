"""The Ray Data engine on a local Ray instance produces the same store as the local engine."""

from __future__ import annotations

import shutil

import pytest
from conftest import SAMPLES

from pipeline import Pipeline
from pipeline.config import PipelineConfig

pytest.importorskip("ray", reason="the ray engine needs the 'distributed' extra")


def _snapshot(p: Pipeline) -> list[tuple]:
    return [(s.id, s.doc_id, s.path, s.start, s.end, s.pages, s.tokens) for s in p.sections()]


def test_ray_engine_matches_local_engine(tmp_path):
    inputs = tmp_path / "in"
    shutil.copytree(SAMPLES / "contracts", inputs / "contracts")
    shutil.copytree(SAMPLES / "ehr", inputs / "ehr")
    (inputs / "empty.txt").write_bytes(b"")
    local_cfg = PipelineConfig().replace(ingest={"workers": 2})
    ray_cfg = PipelineConfig().replace(ingest={"workers": 2, "engine": "ray"})
    with Pipeline(tmp_path / "local", local_cfg) as local, Pipeline(tmp_path / "ray", ray_cfg) as distributed:
        a = local.ingest([inputs])
        b = distributed.ingest([inputs])
        assert (a.documents, a.sections, a.passages, a.pages) == (b.documents, b.sections, b.passages, b.pages) == (
            2, a.sections, a.passages, a.pages)
        assert [f.error for f in b.failed] == [f.error for f in a.failed] == ["file is empty"]
        assert _snapshot(local) == _snapshot(distributed)
        assert distributed._open_index().size == b.passages
        again = distributed.ingest([inputs])
        assert again.skipped == 2 and again.documents == 0
