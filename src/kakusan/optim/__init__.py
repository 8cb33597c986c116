"""Optimizers: the gradient method from a quadratic upper bound (η = 1/L, backtracking) and EM."""

from kakusan.optim.surrogate import SurrogateGD, make_optimizer

__all__ = ["SurrogateGD", "make_optimizer"]
