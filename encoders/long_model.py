"""The long sparse-attention encoder as plain modules: a BERT encoder whose self-attention is
``kernels.sparse_attention`` over a ``SparsePattern``.

Built from pretrained BERT-family weights the way Longformer was built from RoBERTa (Beltagy et al. 2020, §5):
the position table is extended by copying the pretrained one end to end, and full attention is replaced by
window + global (+ BigBird random) attention. HF BERT checkpoints load through a state-dict pre-hook that
renames keys, fuses q/k/v and extends positions.

>>> model = LongEncoderModel.from_pretrained(path, window=256)              # all-MiniLM-L6-v2 folder
>>> hidden = model(input_ids, global_tokens=(0,))                          # [B, S] → [B, S, 384]
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from kernels import SparsePattern, sparse_attention


@dataclass(frozen=True)
class LongEncoderArgs:
    vocab_size: int = 30522
    dim: int = 384
    n_layer: int = 6
    n_head: int = 12
    intermediate_size: int = 1536
    type_vocab_size: int = 2
    max_positions: int = 65536
    """Positions after extension; the pretrained table is copied end to end to fill it."""
    norm_eps: float = 1e-12
    window: int = 256
    """One-sided sliding window (HF Longformer's attention_window / 2)."""
    random_blocks: int = 0
    block_size: int = 64
    seed: int = 0
    impl: str = "auto"
    """Attention backend, see ``kernels.sparse_attention``."""

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_head

    @classmethod
    def from_name(cls, name: str, **overrides) -> LongEncoderArgs:
        presets = {
            "minilm-l6": cls(),
            "tiny": cls(vocab_size=128, dim=32, n_layer=2, n_head=2, intermediate_size=64, max_positions=1024,
                        window=8),
        }
        if name not in presets:
            raise ValueError(f"unknown LongEncoder preset {name!r}; choose one of {', '.join(presets)}")
        return replace(presets[name], **overrides)

    @classmethod
    def from_bert_config(cls, config: dict, **overrides) -> LongEncoderArgs:
        if config.get("hidden_act", "gelu") != "gelu" or config.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError("LongEncoder loads BERT checkpoints with gelu and absolute positions only")
        return cls(vocab_size=config["vocab_size"], dim=config["hidden_size"], n_layer=config["num_hidden_layers"],
                   n_head=config["num_attention_heads"], intermediate_size=config["intermediate_size"],
                   type_vocab_size=config.get("type_vocab_size", 2), norm_eps=config.get("layer_norm_eps", 1e-12),
                   **overrides)

    def pattern(self, global_tokens: tuple[int, ...] = ()) -> SparsePattern:
        return SparsePattern(window=self.window, global_tokens=global_tokens, random_blocks=self.random_blocks,
                             block_size=self.block_size, seed=self.seed)


class Embeddings(nn.Module):
    def __init__(self, args: LongEncoderArgs) -> None:
        super().__init__()
        self.tok_embeddings = nn.Embedding(args.vocab_size, args.dim)
        self.pos_embeddings = nn.Embedding(args.max_positions, args.dim)
        self.type_embeddings = nn.Embedding(args.type_vocab_size, args.dim)
        self.norm = nn.LayerNorm(args.dim, eps=args.norm_eps)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        x = self.tok_embeddings(input_ids) + self.type_embeddings(token_type_ids) + self.pos_embeddings(position_ids)
        return self.norm(x)


def residual_linear(x: torch.Tensor, y: torch.Tensor, linear: nn.Linear) -> torch.Tensor:
    """``x + linear(y)`` as (x + bias) with y @ W^T accumulated into it in place: one pass over the
    activations fewer than a linear (which first copies its bias into the output) followed by an add. Under
    autocast (training in bfloat16), or when the dtypes differ, the plain ``x + linear(y)``: the in-place
    product is not an autocast op."""
    if y.dtype != linear.weight.dtype or torch.is_autocast_enabled(y.device.type):
        return x + linear(y)
    out = x + linear.bias
    out.view(-1, out.shape[-1]).addmm_(y.reshape(-1, y.shape[-1]), linear.weight.t())
    return out


def _linear_pointwise():
    """oneDNN's linear with a fused post-op, where this torch build has it (a private op: looked up, not assumed)."""
    try:
        return torch.ops.mkldnn._linear_pointwise if torch.backends.mkldnn.is_available() else None  # noqa: SLF001
    except (AttributeError, RuntimeError):
        return None


_LINEAR_POINTWISE = _linear_pointwise()
_UNFUSED: set[torch.dtype] = set()
"""dtypes oneDNN built no fused linear for on this CPU (bfloat16 without AVX-512): they take the two calls."""


def linear_gelu(x: torch.Tensor, linear: nn.Linear) -> torch.Tensor:
    """``gelu(linear(x))`` (exact erf GELU). On the CPU without autograd it is one oneDNN call with GELU
    as a post-op (the op inductor uses), which reads the product once more fewer and, in bfloat16, applies
    GELU to the float32 product before rounding; elsewhere, and where oneDNN has no such kernel for the
    dtype on this CPU, the two PyTorch calls."""
    if (_LINEAR_POINTWISE is not None and x.device.type == "cpu" and x.dtype in (torch.float32, torch.bfloat16)
            and x.dtype not in _UNFUSED
            and not (torch.is_grad_enabled() and (x.requires_grad or linear.weight.requires_grad))):
        try:
            return _LINEAR_POINTWISE(x, linear.weight, linear.bias, "gelu", [], "none")
        except RuntimeError:  # "could not create a primitive descriptor": no kernel for this dtype here
            _UNFUSED.add(x.dtype)
    return F.gelu(linear(x))


class Attention(nn.Module):
    def __init__(self, args: LongEncoderArgs) -> None:
        super().__init__()
        self.n_head, self.head_dim = args.n_head, args.head_dim
        self.wqkv = nn.Linear(args.dim, 3 * args.dim)
        self.wo = nn.Linear(args.dim, args.dim)
        self.norm = nn.LayerNorm(args.dim, eps=args.norm_eps)

    def forward(self, x: torch.Tensor, pattern: SparsePattern, impl: str) -> torch.Tensor:
        B, S, dim = x.shape
        qkv = self.wqkv(x).view(B, S, 3, self.n_head, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]                                       # [B, H, S, D]
        y = sparse_attention(q, k, v, pattern=pattern, impl=impl)               # [B, H, S, D]
        y = y.transpose(1, 2).reshape(B, S, dim)
        return self.norm(residual_linear(x, y, self.wo))


class FeedForward(nn.Module):
    def __init__(self, args: LongEncoderArgs) -> None:
        super().__init__()
        self.w1 = nn.Linear(args.dim, args.intermediate_size)
        self.w2 = nn.Linear(args.intermediate_size, args.dim)
        self.norm = nn.LayerNorm(args.dim, eps=args.norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(residual_linear(x, linear_gelu(x, self.w1), self.w2))


class Block(nn.Module):
    def __init__(self, args: LongEncoderArgs) -> None:
        super().__init__()
        self.attention = Attention(args)
        self.feed_forward = FeedForward(args)

    def forward(self, x: torch.Tensor, pattern: SparsePattern, impl: str) -> torch.Tensor:
        return self.feed_forward(self.attention(x, pattern, impl))


_HF_RENAMES = {
    "embeddings.word_embeddings.": "embeddings.tok_embeddings.",
    "embeddings.position_embeddings.": "embeddings.pos_embeddings.",
    "embeddings.token_type_embeddings.": "embeddings.type_embeddings.",
    "embeddings.LayerNorm.": "embeddings.norm.",
    "attention.output.dense.": "attention.wo.",
    "attention.output.LayerNorm.": "attention.norm.",
    "intermediate.dense.": "feed_forward.w1.",
    "output.dense.": "feed_forward.w2.",
    "output.LayerNorm.": "feed_forward.norm.",
    "encoder.layer.": "layers.",
}


class LongEncoderModel(nn.Module):
    def __init__(self, args: LongEncoderArgs) -> None:
        super().__init__()
        self.args = args
        self.embeddings = Embeddings(args)
        self.layers = nn.ModuleList(Block(args) for _ in range(args.n_layer))
        self._register_load_state_dict_pre_hook(self._load_hook)

    def _load_hook(self, state_dict, prefix, *_args) -> None:
        """Accept HF BERT checkpoints: rename keys, fuse q/k/v, extend positions by copying."""
        for key in list(state_dict):
            if key.startswith(prefix + "bert."):
                state_dict[prefix + key[len(prefix) + 5:]] = state_dict.pop(key)
        for key in list(state_dict):
            if key.startswith(prefix + "pooler.") or key.endswith("position_ids"):
                state_dict.pop(key)
                continue
            new = key
            for old, renamed in _HF_RENAMES.items():
                new = new.replace(old, renamed)  # order matters: attention.output.* before output.*
            if new != key:
                state_dict[new] = state_dict.pop(key)
        for i in range(self.args.n_layer):
            base = f"{prefix}layers.{i}.attention."
            for kind in ("weight", "bias"):
                parts = [base + f"self.{name}.{kind}" for name in ("query", "key", "value")]
                if all(p in state_dict for p in parts):
                    state_dict[base + f"wqkv.{kind}"] = torch.cat([state_dict.pop(p) for p in parts])
        pos_key = prefix + "embeddings.pos_embeddings.weight"
        if pos_key in state_dict:
            state_dict[pos_key] = extend_positions(state_dict[pos_key], self.args.max_positions)

    def forward(self, input_ids: torch.Tensor, global_tokens: tuple[int, ...] = (),
                token_type_ids: torch.Tensor | None = None, position_ids: torch.Tensor | None = None) -> torch.Tensor:
        """input_ids [B, S] → hidden states [B, S, dim]. ``global_tokens``: positions with global attention."""
        B, S = input_ids.shape
        if S > self.args.max_positions:
            raise ValueError(f"{S} tokens exceed the encoder's {self.args.max_positions} positions")
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        if position_ids is None:
            position_ids = torch.arange(S, device=input_ids.device).expand(B, S)
        pattern = self.args.pattern(tuple(global_tokens))
        x = self.embeddings(input_ids, token_type_ids, position_ids)
        for layer in self.layers:
            x = layer(x, pattern, self.args.impl)
        return x

    @classmethod
    def from_pretrained(cls, path: str | Path, **overrides) -> LongEncoderModel:
        """Load a HF BERT folder (config.json + model.safetensors or pytorch_model.bin); ``overrides`` set args."""
        from safetensors.torch import load_file

        path = Path(path)
        args = LongEncoderArgs.from_bert_config(json.loads((path / "config.json").read_text()), **overrides)
        weights = path / "model.safetensors"
        state = load_file(str(weights)) if weights.exists() else torch.load(path / "pytorch_model.bin",
                                                                           map_location="cpu", weights_only=True)
        model = cls(args)
        model.load_state_dict(state, strict=True)
        return model.eval()


def extend_positions(table: torch.Tensor, positions: int) -> torch.Tensor:
    """Longformer's initialization: copy the pretrained position table end to end up to ``positions`` rows.

    [P, dim] → [positions, dim]; row i is the pretrained row i % P (truncated when positions < P).
    """
    reps = -(-positions // table.shape[0])
    return table.repeat(reps, 1)[:positions].clone()
