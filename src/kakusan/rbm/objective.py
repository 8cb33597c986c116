"""The free-energy contrast: the surrogate loss whose gradient is the RBM's log-likelihood gradient.

With q(v) = exp(−F(v)) / Z, the gradient of the mean negative log-likelihood is

    ∂/∂θ [⟨F⟩_data + log Z] = ⟨∂F/∂θ⟩_data − ⟨∂F/∂θ⟩_q,

so the loss ℓ(θ) = mean F(v_data) − mean F(v_neg), with the negative samples v_neg ~ q held fixed
(detached), has exactly this gradient in expectation — data statistics minus model statistics, as
for every energy model here — and any ``torch.optim`` optimizer applies (Hinton 2002; Tieleman 2008).
Its value is not the log-likelihood; :func:`pseudo_log_likelihood` gives a cheap proxy to watch.
"""

from __future__ import annotations

import math

import torch

from kakusan.rbm.base import RBM
from kakusan.rbm.negatives import NegativePhase
from kakusan.train import StepOutput

Tensor = torch.Tensor


class FreeEnergyContrast:
    """``objective(model, batch, generator) -> StepOutput`` with loss mean F(v_data) − mean F(v_neg) + (λ/2)‖W‖².

    Parameters
    ----------
    negatives : the negative phase (CD-k, PCD-k, PT-PCD; :mod:`kakusan.rbm.negatives`).
    weight_decay : λ of the L2 penalty on W (not on the biases).
    offset_rate : for centered RBMs, the sliding-average rate ν of the offsets μ, λ (Melchior et al. 2016);
        each update moves them towards the previous batch's mean visible and hidden activities.
    proxy_rows, proxy_every : the likelihood proxy is computed on this many rows of every
        ``proxy_every``-th batch (``proxy_rows=0``: never).

    Notes
    -----
    ``metrics`` hold ``free_energy_gap`` = mean F(v_neg) − mean F(v_data), the negative phase's own
    metrics (e.g. PT swap rates) and ``pseudo_log_likelihood`` (nats per example; binary visible
    units) or ``reconstruction_error`` (mean squared error of E[v | h], Gaussian visible units).
    """

    def __init__(self, negatives: NegativePhase, *, weight_decay: float = 0.0, offset_rate: float = 0.01,
                 proxy_rows: int = 16, proxy_every: int = 10):
        self.negatives = negatives
        self.weight_decay, self.offset_rate = float(weight_decay), float(offset_rate)
        self.proxy_rows, self.proxy_every = proxy_rows, max(1, proxy_every)
        self._pending_offsets: tuple[Tensor, Tensor] | None = None
        self._calls = 0
        self._proxy_generator: torch.Generator | None = None  # its own stream: the proxy never moves training's

    def __call__(self, model: RBM, batch: Tensor, generator: torch.Generator) -> StepOutput:
        v_data = model.check_visible(batch)
        self._apply_offsets(model)
        neg = self.negatives(model, v_data, generator)
        n = len(v_data)
        v = torch.cat([v_data, neg.v.detach()])  # one matrix product for both phases, forward and backward
        a = model.hidden_field(v)  # (B + B', n_hidden)
        f = model.visible_energy(v) - model.hidden_units.log_partition(a).sum(-1)  # F(v) (B + B',)
        f_data, f_neg = f[:n].mean(), f[n:].mean()
        if neg.complete is not None:
            neg.complete(a[n:].detach(), generator)
        loss = f_data - f_neg
        if self.weight_decay:
            loss = loss + 0.5 * self.weight_decay * torch.dot(model.W.reshape(-1), model.W.reshape(-1))
        if getattr(model, "centered", False):  # applied before the next forward (parameters must not
            with torch.no_grad():  # change between this forward and its backward)
                self._pending_offsets = (v_data.mean(0), model.hidden_units.mean(a[:n].detach()).mean(0))
        metrics = {"free_energy_gap": float(f_neg.detach() - f_data.detach()), **neg.metrics}
        if self.proxy_rows and self._calls % self.proxy_every == 0:
            if self._proxy_generator is None or self._proxy_generator.device != v_data.device:
                self._proxy_generator = torch.Generator(device=v_data.device).manual_seed(0)
            metrics.update(likelihood_proxy(model, v_data[: self.proxy_rows], self._proxy_generator))
        self._calls += 1
        return StepOutput(loss=loss, metrics=metrics)

    def state_dict(self) -> dict[str, Tensor]:
        """What a checkpoint must keep to resume exactly: the negative phase's chains and pending offsets."""
        out = {f"negatives.{k}": v for k, v in self.negatives.state_dict().items()}
        if self._pending_offsets is not None:
            out["pending_visible_mean"], out["pending_hidden_mean"] = self._pending_offsets
        return out

    def load_state_dict(self, tensors: dict[str, Tensor]) -> None:
        self.negatives.load_state_dict({k.removeprefix("negatives."): v for k, v in tensors.items()
                                        if k.startswith("negatives.")})
        if "pending_visible_mean" in tensors:
            self._pending_offsets = (tensors["pending_visible_mean"], tensors["pending_hidden_mean"])

    def _apply_offsets(self, model: RBM) -> None:
        if self._pending_offsets is not None:
            model.update_offsets(*self._pending_offsets, rate=self.offset_rate)
            self._pending_offsets = None


@torch.no_grad()
def pseudo_log_likelihood(model: RBM, v: Tensor, generator: torch.Generator | None = None,
                          n_flips: int = 1) -> Tensor:
    """Stochastic pseudo-log-likelihood (n/k) Σ_{i∈S} log σ(F(v^{(i)}) − F(v)), v^{(i)} = v with unit i flipped: (B,).

    Σ_i log q(v_i | v_{−i}) estimated from k = ``n_flips`` units per example (evenly spaced from a random
    offset; k = 1 is scikit-learn's ``score_samples``); binary visible units only. An unbiased estimate of
    the pseudo-log-likelihood, not of log q(v); its variance falls as 1/k.
    """
    v = model.check_visible(v)
    B, n = v.shape
    k = max(1, min(n_flips, n))
    offset = torch.randint(0, n, (B, 1), generator=generator, device=v.device)
    units = (offset + torch.arange(k, device=v.device) * (n // k)) % n  # (B, k)
    flipped = v.repeat_interleave(k, 0)  # (B·k, n)
    rows = torch.arange(B * k, device=v.device)
    lo, hi = model.visible_units.values
    flipped[rows, units.reshape(-1)] = lo + hi - flipped[rows, units.reshape(-1)]
    gap = model.free_energy(flipped).reshape(B, k) - model.free_energy(v)[:, None]
    return n * torch.nn.functional.logsigmoid(gap).mean(1)


@torch.no_grad()
def reconstruction_error(model: RBM, v: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Mean squared error ‖v − E[v | h]‖² / n_visible with h ~ q(h | v): (B,)."""
    v = model.check_visible(v)
    return ((v - model.visible_mean(model.sample_hidden(v, generator))) ** 2).mean(-1)


def likelihood_proxy(model: RBM, v: Tensor, generator: torch.Generator | None = None,
                     n_flips: int = 1) -> dict[str, float]:
    """A cheap live proxy of the fit: the mean pseudo-log-likelihood (binary visible units; ``n_flips``
    units per example) or the reconstruction error (Gaussian visible units), as a one-entry dict."""
    if len(v) == 0:
        return {}
    if model.visible_units is None:
        return {"reconstruction_error": float(reconstruction_error(model, v, generator).mean())}
    pll = float(pseudo_log_likelihood(model, v, generator, n_flips).mean())
    return {"pseudo_log_likelihood": pll if math.isfinite(pll) else float("nan")}


__all__ = ["FreeEnergyContrast", "likelihood_proxy", "pseudo_log_likelihood", "reconstruction_error"]
