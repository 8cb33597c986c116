"""The Gaussian N(mu, Sigma) in D dimensions: log-density, sampling, closed-form MLE, KL, gradient fit.

Maximum likelihood is KL minimisation, KL(p0 || q) = const - E_{p0}[log q] for the empirical distribution
p0 of the data. :mod:`kakusan.gaussian.model` holds the distribution and the closed form mu = xbar, Sigma = S
(the biased, 1/n covariance) of :func:`fit_mle`; :mod:`kakusan.gaussian.gradient` holds the analytic
gradients and :func:`fit_gradient`, which follows them to the same point. Everything is float64.

>>> import torch
>>> x = torch.tensor([[0.0, 1.0], [2.0, 1.0], [1.0, 4.0]])
>>> q = fit_mle(x)
>>> q.mean.tolist(), [round(v, 12) for v in q.cov.diagonal().tolist()]
([1.0, 2.0], [0.666666666667, 2.0])
"""

from kakusan.gaussian.gradient import (GaussianGrads, GradientFit, analytic_gradients, expected_log_prob,
                                       fit_gradient)
from kakusan.gaussian.model import (DTYPE, LOG_2PI, Gaussian, GaussianConfig, GaussianStats, as_data,
                                    check_nonsingular, fit_mle, kl_gaussians, solve, sufficient_stats)

__all__ = ["DTYPE", "LOG_2PI", "Gaussian", "GaussianConfig", "GaussianGrads", "GaussianStats", "GradientFit",
           "analytic_gradients", "as_data", "check_nonsingular", "expected_log_prob", "fit_gradient", "fit_mle",
           "kl_gaussians", "solve", "sufficient_stats"]
