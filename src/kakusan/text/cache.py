"""The caption-embedding cache: the training captions are encoded once and kept on disk.

``encode_cached(encoder, texts)`` returns ``encoder.encode(texts, check=False)`` (a
:class:`~kakusan.diffusion.conditioning.TextCondition`), read from ``data_home()/text-cache/<key>.safetensors``
when it is there, where the key is the SHA-256 of the encoder's weights file name and size and of the texts
themselves: a different caption list, or another encoder, gets its own file. The file is written atomically
(safetensors; nothing is unpickled) and a damaged one is recomputed, never trusted.
"""

from __future__ import annotations

import hashlib
import json

import torch

from kakusan.diffusion.conditioning import TextCondition

Tensor = torch.Tensor


def cache_key(encoder, texts: list[str]) -> str:
    weights = encoder.folder / "model.safetensors"
    h = hashlib.sha256(json.dumps([weights.name, weights.stat().st_size, list(texts)]).encode())
    return h.hexdigest()[:24]


def encode_cached(encoder, texts: list[str]) -> TextCondition:
    """The condition of ``texts`` (the empty string allowed), from the disk cache when it holds them."""
    from safetensors.torch import load_file, save

    from kakusan.data.datasets import data_home
    from kakusan.files import atomic_write_bytes

    texts = list(texts)
    path = data_home() / "text-cache" / f"{cache_key(encoder, texts)}.safetensors"
    if path.exists():
        try:
            t = load_file(path)
            cond = TextCondition(t["tokens"], t["mask"].bool(), t["pooled"])
            if len(cond) == len(texts):
                return cond.to(encoder.device)
        except Exception:  # a damaged cache file (safetensors raises its own types): recompute it
            pass
    cond = encoder.encode(texts, check=False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = save({"tokens": cond.tokens.cpu().contiguous(), "mask": cond.mask.to(torch.uint8).cpu().contiguous(),
                     "pooled": cond.pooled.cpu().contiguous()})
        atomic_write_bytes(path, blob)
    except OSError:  # a read-only cache: the embeddings are still returned
        pass
    return cond


__all__ = ["encode_cached", "cache_key"]
