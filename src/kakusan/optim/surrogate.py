"""The gradient method derived from a quadratic upper bound (majorise-minimise), η = 1/L.

If the curvature of f is bounded, ∇²f ⪯ L·I, then for every θ'

    f(θ') ≤ f(θ) + ∇f(θ)ᵀ(θ' − θ) + (L/2)‖θ' − θ‖²,

and the minimiser of the right-hand side (the surrogate) is θ' = θ − ∇f(θ)/L, which gives
f(θ') ≤ f(θ) − ‖∇f(θ)‖²/(2L): the step never increases f. With an L1 penalty λ‖θ‖₁ added, the
surrogate's minimiser is the soft-thresholded step (proximal gradient), which keeps the guarantee
for f + λ‖θ‖₁.

When L is unknown, backtracking finds one: try θ' with the current L and double L until the bound
holds at θ' (the sufficient-decrease test above); then let L shrink by ``shrink`` for the next step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal

import torch

from kakusan.errors import KakusanError


def soft_threshold(x: torch.Tensor, t: float) -> torch.Tensor:
    """prox of t‖·‖₁: sign(x)·max(|x| − t, 0)."""
    return torch.sign(x) * torch.clamp(x.abs() - t, min=0.0)


class SurrogateGD(torch.optim.Optimizer):
    """θ ← prox_{λ/L}(θ − ∇f(θ)/L): gradient step from a quadratic upper bound with curvature ``lipschitz``.

    Parameters
    ----------
    params : iterable of tensors or parameter groups (a group may set its own ``l1``).
    lipschitz : float
        L with ∇²f ⪯ L·I. With ``backtracking=False`` it must be a true bound for the guarantee.
    l1 : float
        L1 penalty weight λ, applied by soft-thresholding (proximal step).
    backtracking : bool
        Find L adaptively; needs ``step(closure)`` with a closure returning the objective value f
        (without the L1 term; the optimizer adds it).
    shrink : float
        After an accepted step, L ← L·shrink (≤ 1) so the step can grow again.
    """

    def __init__(self, params: Iterable, lipschitz: float = 1.0, l1: float = 0.0, backtracking: bool = False,
                 shrink: float = 0.9, max_doublings: int = 60):
        if not lipschitz > 0:
            raise KakusanError(f"the curvature bound L must be positive, got {lipschitz}")
        if l1 < 0:
            raise KakusanError(f"the L1 weight must be non-negative, got {l1}")
        super().__init__(params, dict(lipschitz=float(lipschitz), l1=float(l1)))
        self.backtracking, self.shrink, self.max_doublings = backtracking, shrink, max_doublings

    def _params(self):
        return [p for g in self.param_groups for p in g["params"] if p.grad is not None]

    def _l1(self) -> float:
        return sum(g["l1"] * sum(float(p.abs().sum()) for p in g["params"]) for g in self.param_groups)

    def _take_step(self, L: float) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                p.add_(p.grad, alpha=-1.0 / L)
                if g["l1"] > 0:
                    p.copy_(soft_threshold(p, g["l1"] / L))

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:  # type: ignore[override]
        if not self.backtracking:
            loss = None
            if closure is not None:
                with torch.enable_grad():
                    loss = closure()
            self._take_step(self.param_groups[0]["lipschitz"])
            return loss
        if closure is None:
            raise KakusanError("backtracking needs step(closure) with a closure returning the objective value")
        return self._backtracking_step(closure)

    def _backtracking_step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:
        l1_before = self._l1()
        with torch.enable_grad():
            f0 = float(closure().detach())  # the smooth part f(θ); the L1 term is handled by the prox
        params = self._params()
        start = [p.detach().clone() for p in params]
        grads = [p.grad.detach().clone() for p in params]
        L = self.param_groups[0]["lipschitz"]
        for _ in range(self.max_doublings):
            self._take_step(L)
            d = [p - s for p, s in zip(params, start)]
            # the quadratic bound must hold at θ': f(θ') ≤ f(θ) + gᵀd + (L/2)‖d‖²
            bound = f0 + sum(float((g * di).sum()) for g, di in zip(grads, d)) \
                + 0.5 * L * sum(float((di * di).sum()) for di in d)
            with torch.enable_grad():
                f1 = float(closure().detach())
            if f1 <= bound + 1e-12 * max(1.0, abs(f0)):
                for gp in self.param_groups:
                    gp["lipschitz"] = L * self.shrink
                return torch.tensor(f0 + l1_before, dtype=torch.float64)
            for p, s, g in zip(params, start, grads):  # undo, restore the gradient at θ, double L
                p.copy_(s)
                p.grad = g.clone()
            L *= 2.0
        raise KakusanError(f"backtracking found no curvature bound L after {self.max_doublings} doublings: the "
                           "objective may be non-smooth, or its value and gradient disagree")


OptimizerName = Literal["surrogate", "backtracking", "sgd", "momentum", "adam"]


def make_optimizer(name: OptimizerName, params: Iterable, *, lr: float | None = None, lipschitz: float | None = None,
                   l1: float = 0.0) -> torch.optim.Optimizer:
    """Build an optimizer by name: the η = 1/L surrogate method (fixed or backtracking L) or torch's SGD/momentum/Adam."""
    params = list(params)
    if name in ("surrogate", "backtracking"):
        if lipschitz is None:
            raise KakusanError("the surrogate method needs a curvature bound L (the model's `lipschitz_bound()`)")
        return SurrogateGD(params, lipschitz=lipschitz, l1=l1, backtracking=name == "backtracking")
    if l1:
        raise KakusanError(f"l1 is applied by the proximal step of the surrogate method, not by {name}: "
                           "use --optimizer surrogate or backtracking")
    if lr is None:
        raise KakusanError(f"optimizer {name} needs a learning rate (--lr)")
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    raise KakusanError(f"unknown optimizer {name!r}: choose surrogate, backtracking, sgd, momentum or adam")
