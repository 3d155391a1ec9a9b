"""Encoders: the sentence embedder (and, in later stages, the long sparse encoder and summarizer)."""
