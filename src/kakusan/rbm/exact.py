"""Exact log Z of an RBM by enumerating its smaller layer (float64, chunked, bounded memory).

Summing one layer out in closed form leaves a sum over the 2^n states s of the other layer,

    Z = Σ_s exp(L(s)),      L(s) = κ + θᵀs + Σ_i φ(f_i + (sM)_i)            (binary–binary)
                            L(s) = κ + θᵀs + Σ_{k<l} P_kl s_k s_l               (Gaussian visible, s = h)

with φ the other layer's log-partition (:mod:`kakusan.rbm.units`). The affine pieces (κ, θ, f, M) are
read off the model's layer functions by evaluating them at s = 0 and at the unit vectors, so every
RBM subclass is covered without extra code; ±1 units are rewritten with φ(x) = softplus(2x) − x.

The binary–binary sum is done in two blocks: with s = (s_A, s_B), the fields are f + s_A M_A + s_B M_B,
an outer sum of two small tables, so no matrix product is needed per state and the work is one
softplus per (state, unit) pair. Chunks keep memory at ``chunk`` float64 numbers; log-sum-exp runs
in float64 with a running maximum.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from kakusan.errors import KakusanError, check_positive_int
from kakusan.rbm.base import RBM, Layer
from kakusan.rbm.units import softplus
from kakusan.runtime import make_generator

Tensor = torch.Tensor
F64 = torch.float64
MAX_UNITS = 32
MAX_SAMPLE_UNITS = 26  # exact sampling keeps all 2^n log-weights: 512 MiB of float64 at 26
DEFAULT_CHUNK = 1 << 18  # float64 numbers in one (states × units) block: 2 MiB


class SoftplusSum(NamedTuple):
    """L(s) = const + θᵀs + Σ_i softplus(field_i + (sM)_i) over s ∈ {lo, hi}^n (float64).

    theta (n,), field (m,), coupling M (n, m), values (lo, hi) of the enumerated units.
    """

    const: float
    theta: Tensor
    field: Tensor
    coupling: Tensor
    values: tuple[float, float]


class QuadraticSum(NamedTuple):
    """L(s) = const + θᵀs + Σ_{k<l} P_kl s_k s_l over s ∈ {0, 1}^n (float64); ``pair`` is P, upper triangular."""

    const: float
    theta: Tensor
    pair: Tensor


def smaller_layer(model: RBM) -> Layer:
    """The layer to enumerate: the smaller one (ties: hidden); always hidden for real-valued visible units."""
    if model.visible_units is None or model.n_hidden <= model.n_visible:
        return "hidden"
    return "visible"


def enumeration_form(model: RBM, layer: Layer | None = None) -> SoftplusSum | QuadraticSum:
    """The log-weight L(s) of the states of ``layer`` (default: the smaller), read off the model in float64."""
    layer = layer or smaller_layer(model)
    m = model.to_float64()
    if m.device.type != "cpu":  # the enumeration runs on the CPU
        import copy

        m = copy.deepcopy(m).cpu()
    with torch.no_grad():
        if m.visible_units is None:
            if layer != "hidden":
                raise KakusanError("real-valued visible units cannot be enumerated: enumerate the hidden layer")
            return _quadratic_form(lambda s: -m.hidden_free_energy(s), m.n_hidden)
        if layer == "hidden":
            return _softplus_form(m.hidden_energy, m.visible_field, m.n_hidden, m.hidden_units, m.visible_units)
        if layer == "visible":
            return _softplus_form(m.visible_energy, m.hidden_field, m.n_visible, m.visible_units, m.hidden_units)
    raise KakusanError(f"layer must be 'visible' or 'hidden', got {layer!r}")


def _softplus_form(energy, field, n: int, units, other) -> SoftplusSum:
    """L(s) = −E_s(s) + Σ_i φ(field_i(s)) for energies and fields affine in s, as a :class:`SoftplusSum`."""
    probe = torch.cat([torch.zeros(1, n, dtype=F64), torch.eye(n, dtype=F64)])  # (n+1, n): 0 and e_k
    e, f = energy(probe), field(probe)
    theta = -(e[1:] - e[0])
    const, f0, M = float(-e[0]), f[0], f[1:] - f[0]
    if other.lo != 0.0:  # log 2cosh x = softplus(2x) − x
        theta = theta - M.sum(1)
        const, f0, M = const - float(f0.sum()), 2.0 * f0, 2.0 * M
    return SoftplusSum(const, theta, f0, M, units.values)


def _quadratic_form(log_weight, n: int) -> QuadraticSum:
    """A quadratic L(s) on {0,1}^n read off at 0, e_k and e_k + e_l."""
    eye = torch.eye(n, dtype=F64)
    iu = torch.triu_indices(n, n, 1)
    probe = torch.cat([torch.zeros(1, n, dtype=F64), eye, eye[iu[0]] + eye[iu[1]]])
    w = log_weight(probe)
    w0, single, double = w[0], w[1 : n + 1], w[n + 1 :]
    pair = torch.zeros(n, n, dtype=F64)
    pair[iu[0], iu[1]] = double - single[iu[0]] - single[iu[1]] + w0
    return QuadraticSum(float(w0), single - w0, pair)


def _states(start: int, stop: int, n: int, values: tuple[float, float]) -> Tensor:
    """States start..stop−1 of {lo, hi}^n as (stop − start, n) float64; bit k of the index is unit n−1−k."""
    return _decode(torch.arange(start, stop), n, values)


def _decode(index: Tensor, n: int, values: tuple[float, float]) -> Tensor:
    """The states with these (int64, CPU) indices as (len(index), n) float64, in :func:`_states`' order."""
    lo, hi = values
    bits = (index[:, None] >> torch.arange(n - 1, -1, -1)) & 1
    return lo + (hi - lo) * bits.to(F64)


def log_z(model: RBM, layer: Layer | None = None, *, chunk: int = DEFAULT_CHUNK) -> float:
    """log Z = log Σ_{v,h} exp(−E(v, h)), exactly, by enumerating ``layer`` (default: the smaller one).

    Parameters
    ----------
    model : any RBM of :mod:`kakusan.rbm`.
    layer : ``"visible"`` or ``"hidden"``; real-valued visible units force ``"hidden"``.
    chunk : float64 numbers per block; memory stays O(chunk + m).

    Returns
    -------
    float, log Z in nats. Cost: 2^n · m softplus evaluations for n enumerated and m other units
    (about 1 s per 2^28 on one core), so n ≲ 25.
    """
    form = enumeration_form(model, layer)
    n = len(form.theta)
    if n > MAX_UNITS:
        raise KakusanError(f"enumerating {n} units (2^{n} states) is impractical (limit {MAX_UNITS}): "
                           "use kakusan.rbm.ais for large layers")
    if isinstance(form, QuadraticSum):
        return _log_sum_quadratic(form, chunk)
    return _log_sum_softplus(form, chunk)


@torch.no_grad()
def sample(model: RBM, n: int, generator=None, *, chunk: int = DEFAULT_CHUNK) -> Tensor:
    """n exact, independent samples of the visible layer (n, n_visible), by enumerating the hidden layer.

    The hidden marginal q(h) ∝ exp(−F(h)) is tabulated over all 2^{n_hidden} states (float64, in chunks),
    h is drawn from it by inverse-CDF, then v ~ q(v | h). These are draws from the model itself, not from
    a Markov chain: the start samples reverse AIS needs for its upper bound, and a check on any sampler.
    Cost: 2^{n_hidden} · n_visible multiply-adds; memory 2^{n_hidden} float64 numbers (n_hidden ≲ 24).
    """
    n_h = model.n_hidden
    if n_h > MAX_SAMPLE_UNITS:
        raise KakusanError(f"exact sampling enumerates 2^{n_h} hidden states (limit 2^{MAX_SAMPLE_UNITS}): "
                           "draw long Gibbs chains with model.sample instead")
    check_positive_int(n, "the number of samples")
    g = make_generator(generator, model.device)
    m = model.to_float64()
    values = m.hidden_units.values
    rows = max(1, chunk // max(m.n_visible, 1))
    log_q = torch.cat([-m.hidden_free_energy(_states(s, min(s + rows, 2**n_h), n_h, values).to(m.device))
                       for s in range(0, 2**n_h, rows)])
    cdf = torch.cumsum(torch.exp(log_q - log_q.max()), 0)
    u = torch.rand(n, generator=g, dtype=F64, device=cdf.device) * cdf[-1]
    index = torch.searchsorted(cdf, u).clamp_(max=2**n_h - 1)
    h = _decode(index.cpu(), n_h, values).to(model.device, model.dtype)
    return model.sample_visible(h, g)


def _log_sum_quadratic(form: QuadraticSum, chunk: int) -> float:
    n = len(form.theta)
    rows = max(1, chunk // max(n, 1))
    acc = _LogSumExp()
    for start in range(0, 2**n, rows):
        s = _states(start, min(start + rows, 2**n), n, (0.0, 1.0))  # (r, n)
        acc.add(s @ form.theta + ((s @ form.pair) * s).sum(1))
    return form.const + acc.value()


def _log_sum_softplus(form: SoftplusSum, chunk: int) -> float:
    """log Σ_s exp(L(s)) with s split into a high block A and a low block B (outer-sum fields)."""
    n, m = form.coupling.shape
    n_b = min(n, max(0, int(math.log2(max(chunk // max(m, 1), 1)))))
    n_a = n - n_b
    s_b = _states(0, 2**n_b, n_b, form.values)
    field_b = s_b @ form.coupling[n_a:]  # (2^{n_b}, m)
    lin_b = s_b @ form.theta[n_a:]
    sums = _SoftplusOuterSum(form, n_a, field_b)
    rows = max(1, chunk // (len(s_b) * m))
    acc = _LogSumExp()
    for start in range(0, 2**n_a, rows):
        s_a = _states(start, min(start + rows, 2**n_a), n_a, form.values)  # (r, n_a)
        field_a = form.field + s_a @ form.coupling[:n_a]  # (r, m)
        acc.add((sums(field_a) + (s_a @ form.theta[:n_a])[:, None] + lin_b[None, :]).reshape(-1))
    return form.const + acc.value()


class _SoftplusOuterSum:
    """Σ_i softplus(a_ri + b_si) for all rows r of a block-A table and s of a block-B table: (r, m) -> (r, 2^{n_b}).

    With m_i ≥ max(0, a_ri + b_si) (bounded from the couplings), softplus(x_i) = m_i + log t_i with
    t_i = e^{−m_i} + e^{a_i − m_A,i} e^{b_i − m_B,i} e^{m_A,i + m_B,i − m_i} ∈ (0, 2], so groups of
    ``GROUP`` factors multiply without overflow and one log serves a group: about 1 ns per (state, unit)
    instead of a softplus each. A block whose product underflows is recomputed with softplus.
    """

    GROUP = 8

    def __init__(self, form: SoftplusSum, n_a: int, field_b: Tensor):
        lo, hi = form.values
        reach = torch.maximum(lo * form.coupling, hi * form.coupling)  # (n, m): the larger of lo·M, hi·M
        self.max_a = form.field + reach[:n_a].sum(0)  # ≥ every field_a_i
        max_b = reach[n_a:].sum(0)
        top = torch.clamp(self.max_a + max_b, min=0.0)  # m_i
        self.field_b = field_b
        pad = (-len(top)) % self.GROUP
        g = self.GROUP
        exp_b = torch.exp(field_b - max_b + (self.max_a + max_b - top))  # (2^{n_b}, m), ≤ 1
        self.exp_b = torch.nn.functional.pad(exp_b, (0, pad)).reshape(len(field_b), g, -1)  # (S, G, m/G)
        self.floor = torch.nn.functional.pad(torch.exp(-top), (0, pad), value=1.0).reshape(g, -1)
        self.pad, self.offset = pad, float(top.sum())

    def __call__(self, field_a: Tensor) -> Tensor:
        g = self.GROUP
        exp_a = torch.nn.functional.pad(torch.exp(field_a - self.max_a), (0, self.pad)).reshape(len(field_a), 1, g, -1)
        t = torch.addcmul(self.floor, exp_a, self.exp_b)  # (r, S, G, m/G): the factors t_i
        while t.shape[2] > 1:  # multiply the G factors of each group pairwise
            half = t.shape[2] // 2
            t = t[:, :, :half] * t[:, :, half:]
        prod = t[:, :, 0]  # (r, S, m/G)
        if bool((prod < 1e-290).any()):
            return softplus(field_a[:, None, :] + self.field_b[None]).sum(-1)
        return torch.log(prod).sum(-1) + self.offset


class _LogSumExp:
    """A running log Σ exp(x) over chunks, in float64."""

    def __init__(self) -> None:
        self.shift, self.total = -math.inf, 0.0

    def add(self, x: Tensor) -> None:
        top = float(x.max())
        if top > self.shift:
            self.total *= math.exp(self.shift - top) if self.shift > -math.inf else 0.0
            self.shift = top
        self.total += float(torch.exp(x - self.shift).sum())

    def value(self) -> float:
        return self.shift + math.log(self.total)


__all__ = ["MAX_UNITS", "QuadraticSum", "SoftplusSum", "enumeration_form", "log_z", "sample", "smaller_layer"]
