"""Optimizers: the gradient method from a quadratic upper bound (η = 1/L, backtracking), EM, and the Adam the
training commands use."""

from kakusan.optim.adam import adam
from kakusan.optim.surrogate import SurrogateGD, make_optimizer

__all__ = ["SurrogateGD", "adam", "make_optimizer"]
