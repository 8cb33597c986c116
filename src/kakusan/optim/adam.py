"""Adam as the training commands build it: torch's fused kernel wherever the parameters' device has one.

The fused kernel updates every tensor in one pass instead of a dozen ``_foreach`` sweeps over the parameters,
which counts where the nets are small: the VAE chapter's MLP steps are timed with it by
``benchmarks/bench_vae.py`` (``benchmarks/results_vae.md``). The update is Adam's own (the same moments and bias
corrections; it agrees with torch's default implementation to float rounding, tested). A run resumed from a
checkpoint keeps the implementation it was saved with (the flag is part of the saved param groups), so resume
stays bit-exact for runs begun before this change too.

The fused kernel writes the parameters without bumping their version counters, so nothing may count optimizer
steps from those: :func:`kakusan.train.fit` tells an objective its step (``set_step``) instead.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


def adam(params: Iterable, lr: float) -> torch.optim.Adam:
    """``torch.optim.Adam(params, lr)``, fused where every parameter's device supports it, else the default."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except RuntimeError:  # a device or dtype without the fused kernel
        return torch.optim.Adam(params, lr=lr)


__all__ = ["adam"]
