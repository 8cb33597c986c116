"""The joint data of the prompt → image model: MNIST and Fashion-MNIST as one set of 20 classes.

``joint_images(split)`` → (images (n, 28, 28) in [0, 1], labels (n,) in 0..19): MNIST's digits keep their labels
0–9, Fashion-MNIST's classes become 10–19 (:mod:`kakusan.data.captions`). The training split interleaves the
two sets in a fixed order, so any prefix holds both domains.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor


def joint_images(split: str = "train") -> tuple[Tensor, Tensor]:
    from kakusan.data.datasets import load

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    parts = []
    for offset, name in ((0, "mnist"), (10, "fashion-mnist")):
        ds = load(name)
        x, y = (ds.x_train, ds.y_train) if split == "train" else (ds.x_test, ds.y_test)
        parts.append((x.float(), y.long() + offset))
    (xa, ya), (xb, yb) = parts
    n = min(len(xa), len(xb))
    # interleave the first n of each, then whatever is left over
    x = torch.stack([xa[:n], xb[:n]], 1).reshape(2 * n, *xa.shape[1:])
    y = torch.stack([ya[:n], yb[:n]], 1).reshape(2 * n)
    return torch.cat([x, xa[n:], xb[n:]]), torch.cat([y, ya[n:], yb[n:]])


def domain_split(labels: Tensor) -> dict[str, Tensor]:
    """Boolean masks of the MNIST (labels < 10) and Fashion-MNIST (≥ 10) rows."""
    return {"mnist": labels < 10, "fashion-mnist": labels >= 10}


__all__ = ["joint_images", "domain_split"]
