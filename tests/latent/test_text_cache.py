"""The caption-embedding cache (kakusan.text.cache): computed once, read back equal, a damaged file recomputed."""

from __future__ import annotations

import torch

from kakusan.text import encode_cached
from kakusan.text.cache import cache_key


def _equal(a, b) -> bool:
    return torch.equal(a.tokens, b.tokens) and torch.equal(a.mask, b.mask) and torch.equal(a.pooled, b.pooled)


def test_cache_round_trips_and_recomputes_a_damaged_file(text_encoder, tmp_path, monkeypatch):
    monkeypatch.setenv("KAKUSAN_DATA", str(tmp_path))
    texts = ["a handwritten 7", "a photo of a bag", ""]
    first = encode_cached(text_encoder, texts)
    assert _equal(first, text_encoder.encode(texts, check=False))
    path = tmp_path / "text-cache" / f"{cache_key(text_encoder, texts)}.safetensors"
    assert path.is_file()
    calls = []
    real = text_encoder.encode
    monkeypatch.setattr(text_encoder, "encode", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = encode_cached(text_encoder, texts)
    assert calls == [] and _equal(again, first)  # read from disk, not encoded again
    path.write_bytes(b"not a safetensors file")
    fixed = encode_cached(text_encoder, texts)
    assert calls == [1] and _equal(fixed, first)
    assert cache_key(text_encoder, texts[:2]) != cache_key(text_encoder, texts)  # other captions, other file
