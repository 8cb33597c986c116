"""Likelihood estimators and sample metrics, one result type for all of them.

:class:`Estimate` is what every estimator returns (value, standard error, sample size, method, unit;
``str`` gives "-85.46 ± 0.09 nats"). :func:`log_mean_exp` is the importance-sampling average in log space
with its delta-method error and effective sample size, shared by AIS (:mod:`kakusan.rbm.ais`) and the
importance-weighted bound. The VAE and diffusion chapters add their estimators (IWAE, VLB, PF-ODE) and
sample metrics here.
"""

from kakusan.evaluate.estimate import Estimate
from kakusan.evaluate.importance import LogMeanExp, log_mean_exp

__all__ = ["Estimate", "LogMeanExp", "log_mean_exp"]
