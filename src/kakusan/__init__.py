"""kakusan (拡散): generative models from the Boltzmann machine to the diffusion model.

Every model is learned by minimising KL(p0 || q_theta), the divergence from the empirical
distribution of the data to the model, i.e. by maximum likelihood.
"""

import os as _os

# OpenMP's default busy-waiting makes torch 3-90x slower on shared CPUs; this must be set
# before torch loads, so it is done at package import (a user's explicit setting wins).
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"


def load(source, weights: str = "ema", *, part: str | None = None, device="cpu"):
    """Rebuild the model a run saved, in one line: ``kakusan.load("runs/vae-…", weights="ema")``.

    ``weights`` is ``"ema"`` (the EMA average, or the raw weights when the run kept none), ``"model"``
    (the exported final weights) or ``"last"`` (the newest training checkpoint); ``part`` rebuilds a
    named component (``"autoencoder"``, ``"denoiser"``). Nothing is unpickled: the class is looked up in
    :mod:`kakusan.registry` and the tensors come from safetensors.
    """
    from kakusan.checkpoint import load_run

    return load_run(source, weights, part=part, device=device)
