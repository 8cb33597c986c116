"""Restricted Boltzmann machines: models, exact log Z, AIS, and learning by the free-energy contrast.

>>> import math
>>> from kakusan.rbm import BernoulliRBM, exact
>>> rbm = BernoulliRBM(64, 12, seed=0)           # W ~ N(0, 0.01²), biases 0: nearly 2^76 equal states
>>> round(exact.log_z(rbm) / math.log(2))       # log Z by enumerating the 2^12 hidden states
76
"""

from kakusan.rbm import exact
from kakusan.rbm.base import RBM
from kakusan.rbm.base_rate import BinaryBase, GaussianBase
from kakusan.rbm.bernoulli import BernoulliRBM
from kakusan.rbm.gaussian import GaussianRBM
from kakusan.rbm.spin import SpinRBM
from kakusan.rbm.units import BERNOULLI, SPIN, Units

__all__ = ["BERNOULLI", "SPIN", "BernoulliRBM", "BinaryBase", "GaussianBase", "GaussianRBM", "RBM", "SpinRBM",
           "Units", "exact"]
