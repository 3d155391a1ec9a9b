from __future__ import annotations

import pytest

from pipeline.config import PipelineConfig


def test_toml_round_trip(tmp_path):
    path = tmp_path / "cfg.toml"
    path.write_text('[ingest]\ntarget_tokens = 2000\nworkers = 3\n[retrieve]\ntop_sections = 5\n[synthesize]\nllm = "extractive"\n')
    cfg = PipelineConfig.from_toml(path)
    assert cfg.ingest.target_tokens == 2000 and cfg.ingest.workers == 3
    assert cfg.retrieve.top_sections == 5 and cfg.synthesize.llm == "extractive"
    assert cfg.index == PipelineConfig().index
    assert cfg.replace(retrieve={"top_sections": None}).retrieve.top_sections == 5  # None means "not given"


@pytest.mark.parametrize(("text", "message"), [
    ("[retreive]\ntop_sections = 2\n", "unknown section"),
    ("[retrieve]\ntop_section = 2\n", "unknown key"),
    ("[retrieve]\ntop_sections = 0\n", "top_sections"),
    ("[synthesize]\nllm = \"gpt\"\n", "unknown llm"),
    ("[ingest]\ntarget_tokens = 9000\nmax_tokens = 100\n", "target_tokens"),
    ("[ingest\n", "not valid TOML"),
    ("[summarize]\ndtype = \"int8\"\n", "unknown dtype"),
    ("[synthesize]\nlocal_dtype = \"half\"\n", "unknown local_dtype"),
    ("[synthesize]\nlocal_attention = \"eager\"\n", "unknown local_attention"),
    ("[synthesize]\nlocal_engine = \"vllm\"\n", "unknown local_engine"),
    ("[answers]\ntyped = [\"essay\"]\n", "unknown typed answer"),
    ("[answers]\nspan_min_score = 1.5\n", "span_min_score"),
])
def test_bad_config_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "cfg.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        PipelineConfig.from_toml(path)


def test_every_attention_backend_the_kernels_have_is_accepted():
    """The backend names come from one place: ``auto`` picks ``cpp`` on a CPU, so it must be accepted too."""
    import kernels
    from pipeline.config import ATTENTION_IMPLS, SummarizeConfig

    assert ATTENTION_IMPLS == ("auto", *kernels.IMPLS)
    for impl in ATTENTION_IMPLS:
        assert SummarizeConfig(impl=impl).impl == impl
    assert PipelineConfig().replace(summarize={"impl": "cpp"}).summarize.impl == "cpp"
    with pytest.raises(ValueError, match="unknown impl"):
        SummarizeConfig(impl="cuda-magic")
