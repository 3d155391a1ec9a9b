"""Backends of ``kernels.sparse_attention``; each module exposes ``attention(q, k, v, *, pattern, scale)``.

Backends never import each other; ``kernels.api`` imports the one asked for, lazily.
"""
