"""kakusan (拡散): generative models from the Boltzmann machine to the diffusion model.

Every model is learned by minimising KL(p0 || q_theta), the divergence from the empirical
distribution of the data to the model, i.e. by maximum likelihood.
"""

import os as _os

# OpenMP's default busy-waiting makes torch 3-90x slower on shared CPUs; this must be set
# before torch loads, so it is done at package import (a user's explicit setting wins).
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
