"""The inverse Ising problem without MCMC: data checks, a common result, one L-BFGS driver, ``solve``.

Every solver here takes ±1 data x (M, N) — optionally with sample weights w (M,), so that
p0(x) = Σ_i w_i δ(x − x_i) / Σ w (exact probabilities of all 2^N states make p0 = q exactly) — and
returns an :class:`InverseResult` with couplings J (N, N, symmetric, zero diagonal) and fields h (N,)
of q(x) ∝ exp(½ xᵀJx + hᵀx), plus diagnostics. ``solve(data, method)`` picks the method by name:

========  ==========================================================  =====================================
method    what it solves                                              file
========  ==========================================================  =====================================
``nmf``   naive mean field: J = −(C⁻¹) off the diagonal               :mod:`kakusan.learn.mean_field`
``tap``   TAP: (C⁻¹)_kl = −J_kl − 2 J_kl² m_k m_l                     :mod:`kakusan.learn.mean_field`
``sm``    Sessak–Monasson: nMF + independent pairs − double count     :mod:`kakusan.learn.mean_field`
``plm``   max Σ_k log q(x_k | x_rest) (pseudo-likelihood)             :mod:`kakusan.learn.pseudolikelihood`
``mpf``   min K = ⟨Σ_k exp(½(E(x) − E(x with k flipped)))⟩_data      :mod:`kakusan.learn.mpf`
``exact`` maximum likelihood with exact statistics (N ≲ 26)           :func:`solve_exact` (here)
========  ==========================================================  =====================================

>>> from kakusan.boltzmann import instances
>>> from kakusan.learn.inverse import solve
>>> truth = instances.sherrington_kirkpatrick(7, beta=0.5, field_std=0.3, seed=0)
>>> result = solve(truth.sample(5000, generator=1), "plm")
>>> result.J.shape, result.h.shape, result.converged
(torch.Size([7, 7]), torch.Size([7]), True)
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np
import torch

from kakusan.errors import DataError, KakusanError

if TYPE_CHECKING:
    from kakusan.boltzmann.ising import IsingModel

Tensor = torch.Tensor
Method = Literal["nmf", "tap", "sm", "plm", "mpf", "exact"]
ValueAndGrad = Callable[[Tensor], tuple[Tensor, Tensor]]
"""θ (P,) -> (f (0-d), ∇f (P,)): an objective and its gradient, as tensors."""


@dataclass(frozen=True)
class InverseResult:
    """Couplings and fields learned from data, with the solver's diagnostics.

    Attributes
    ----------
    J : (N, N) couplings, symmetric with zero diagonal (E(x) = −½ xᵀJx − hᵀx).
    h : (N,) fields.
    method : the solver's name (``"nmf"``, ``"tap"``, ``"plm"``, ...).
    iterations : optimizer iterations (0 for closed forms).
    converged : True when the optimizer met its tolerance (always True for closed forms).
    wall_time : seconds spent in the solver, data checks included.
    objective : the final value of the minimised objective (nan for closed forms).
    message : the optimizer's stop reason, or what a closed form had to do (e.g. TAP pairs without a real root).
    """

    J: Tensor
    h: Tensor
    method: str
    iterations: int = 0
    converged: bool = True
    wall_time: float = 0.0
    objective: float = float("nan")
    message: str = ""

    def to_model(self) -> IsingModel:
        """The learned parameters as a float64 :class:`~kakusan.boltzmann.IsingModel`."""
        from kakusan.boltzmann.ising import IsingModel

        return IsingModel.from_params(self.J.detach().cpu(), self.h.detach().cpu())


class SpinData(NamedTuple):
    """Checked data: ±1 spins ``x`` (M, N) and weights ``w`` (M,) summing to 1, on the same device."""

    x: Tensor
    w: Tensor


# ---------------------------------------------------------------- data checks


def check_spins(data, weights=None, *, dtype: torch.dtype | None = torch.float64, more_rows_than_spins: bool = False,
                why_rows: str = "this method") -> SpinData:
    """Check ±1 data (M, N) and optional weights (M,); return x in ``dtype``, w in float64 summing to 1.

    Raises :class:`~kakusan.errors.DataError` for a wrong ndim, non-numbers, NaN/inf, values other than ±1
    (0/1 data are named as such), no row of positive weight, at most N such rows when
    ``more_rows_than_spins`` (``why_rows`` names what needs them), or a column that is constant over
    those rows (its field would be ±∞).
    """
    x = _as_tensor(data, "data")
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise DataError(f"data must be a 2-D array (M samples, N spins), got shape {tuple(x.shape)}")
    _check_values(x.to(torch.int8) if x.dtype == torch.bool else x)  # in the input's dtype: int8 data check fast
    x = x.to(pick_dtype(dtype, x.numel()))
    w = _check_weights(weights, x)
    used = w > 0
    n_used, n = int(used.sum()), x.shape[1]
    if more_rows_than_spins and n_used <= n:
        raise DataError(f"{why_rows} needs more samples than spins, got M = {n_used} ≤ N = {n}: "
                        "collect more samples or use plm or mpf with l2 > 0")
    _check_constant_columns(x if n_used == len(x) else x[used])
    return SpinData(x, w)


LARGE = 1 << 20
"""Data with more entries than this are evaluated in float32 when a solver's ``dtype`` is None."""


def pick_dtype(dtype: torch.dtype | None, n_entries: int) -> torch.dtype:
    """``dtype`` itself, or for None float32 above :data:`LARGE` entries (≈ 4× faster) and float64 below."""
    if dtype is None:
        return torch.float32 if n_entries > LARGE else torch.float64
    if dtype not in (torch.float32, torch.float64):
        raise KakusanError(f"dtype must be torch.float32, torch.float64 or None, got {dtype!r}")
    return dtype


def _as_tensor(v, name: str) -> Tensor:
    if isinstance(v, Tensor):
        t = v.detach()
    else:
        try:
            t = torch.as_tensor(np.asarray(v))
        except (TypeError, ValueError, RuntimeError):
            raise DataError(f"{name} must be an array of numbers") from None
    if t.is_complex() or not (t.is_floating_point() or t.dtype in _INTS or t.dtype == torch.bool):
        raise DataError(f"{name} must be an array of real numbers, got dtype {t.dtype}")
    return t


_INTS = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def _check_values(x: Tensor) -> None:
    """DataError unless every entry is −1 or +1; NaN and 0/1 data get their own messages."""
    bad = x.abs() != 1  # one pass; NaN and ±inf are != 1 too
    if not bool(bad.any()):
        return
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        i, k = (int(v) for v in (~torch.isfinite(x)).nonzero()[0])
        raise DataError(f"data contain NaN or infinite values (first at row {i}, column {k}): remove those rows")
    if bool(((x == 0) | (x == 1)).all()):
        raise DataError("data are 0/1, these solvers need ±1 spins: convert with kakusan.data.to_spins(x)")
    i, k = (int(v) for v in bad.nonzero()[0])
    raise DataError(f"data must be ±1 spins, found {float(x[i, k]):g} at row {i}, column {k}: "
                    "binarise the data and convert with kakusan.data.to_spins")


def _check_weights(weights, x: Tensor) -> Tensor:
    m = x.shape[0]
    if weights is None:
        return torch.full((m,), 1.0 / m, dtype=torch.float64, device=x.device)
    w = _as_tensor(weights, "weights").to(dtype=torch.float64, device=x.device)
    if w.shape != (m,):
        raise DataError(f"weights must have shape ({m},), one per sample, got {tuple(w.shape)}")
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or not float(w.sum()) > 0:
        raise DataError("weights must be finite and non-negative with a positive sum")
    return w / w.sum()


def _check_constant_columns(x: Tensor) -> None:
    """DataError naming the columns of ±1 data x that never change: |Σ_i x_ik| = M (sums exact in float32)."""
    sums = x.sum(0) if x.dtype == torch.float64 or len(x) < 1 << 24 else x.double().sum(0)
    const = sums.abs() == len(x)
    if bool(const.any()):
        cols = const.nonzero().squeeze(1).tolist()
        shown = ", ".join(str(c) for c in cols[:8]) + (" ..." if len(cols) > 8 else "")
        value = "+1" if float(x[0, cols[0]]) > 0 else "−1"
        raise DataError(f"column {shown} of the data is constant (column {cols[0]} is always {value}), so its "
                        "field would be infinite: drop constant columns before fitting")


def compress_rows(x: Tensor, w: Tensor, dtype: torch.dtype | None = None) -> SpinData:
    """Distinct rows of x with their summed weights when that shrinks the data by ≥ 2× (else x, w), in
    ``dtype`` (None: :func:`pick_dtype` for the rows kept).

    Rows are compared as packed bits (N/8 bytes each, sorted by NumPy on the CPU).
    """
    m = x.shape[0]
    if m >= 64:
        packed = np.packbits((x > 0).cpu().numpy(), axis=1)  # (M, ⌈N/8⌉) uint8
        keys = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1]))).ravel()
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        if 2 * len(first) <= m:
            inverse = torch.as_tensor(inverse.ravel(), device=x.device)
            x = x[torch.as_tensor(first, device=x.device)]
            w = torch.zeros(len(first), dtype=w.dtype, device=w.device).index_add_(0, inverse, w)
    dtype = pick_dtype(dtype, x.numel())
    return SpinData(x.to(dtype), w.to(dtype))


def row_blocks(x: Tensor, bytes_per_block: int = 1 << 20) -> list[slice]:
    """Slices of about ``bytes_per_block`` of x's rows (at least 256 rows): element-wise passes over a block
    stay in cache, which makes the GEMM + element-wise objectives here about 1.7× faster than whole passes."""
    rows = max(256, bytes_per_block // max(1, x.shape[1] * x.element_size()))
    return [slice(s, s + rows) for s in range(0, x.shape[0], rows)]


# ---------------------------------------------------------------- parameters as one vector


def n_coupling_params(n: int, symmetric: bool) -> int:
    """How many free couplings: N(N−1)/2 for a symmetric J, N(N−1) for one row per spin."""
    return n * (n - 1) // 2 if symmetric else n * (n - 1)


def _coupling_index(n: int, symmetric: bool, device) -> tuple[Tensor, Tensor]:
    if symmetric:
        k, l = torch.triu_indices(n, n, 1, device=device)
        return k, l
    off = ~torch.eye(n, dtype=torch.bool, device=device)
    k, l = off.nonzero(as_tuple=True)
    return k, l


def pack(J: Tensor, h: Tensor, symmetric: bool = True) -> Tensor:
    """θ = (couplings, h): J_kl for k < l (symmetric) or for k ≠ l (row-major), then h (N,)."""
    k, l = _coupling_index(len(h), symmetric, h.device)
    return torch.cat([J[k, l], h])


def unpack(theta: Tensor, n: int, symmetric: bool = True) -> tuple[Tensor, Tensor]:
    """Inverse of :func:`pack`: θ -> J (N, N) with zero diagonal (symmetric if ``symmetric``) and h (N,)."""
    k, l = _coupling_index(n, symmetric, theta.device)
    p = n_coupling_params(n, symmetric)
    J = torch.zeros(n, n, dtype=theta.dtype, device=theta.device)
    J[k, l] = theta[:p]
    return (J + J.T if symmetric else J), theta[p:]


def pack_grad(gJ: Tensor, gh: Tensor, symmetric: bool = True) -> Tensor:
    """∂f/∂θ from entry-by-entry ∂f/∂J_kl (N, N): a symmetric coupling gets ∂f/∂J_kl + ∂f/∂J_lk."""
    k, l = _coupling_index(len(gh), symmetric, gh.device)
    return torch.cat([(gJ + gJ.T)[k, l] if symmetric else gJ[k, l], gh])


def with_l2(fun: ValueAndGrad, n_l2: int, l2: float) -> ValueAndGrad:
    """f(θ) + (l2/2) Σ_{i<n_l2} θ_i², value and gradient."""
    if l2 == 0:
        return fun

    def penalised(theta: Tensor) -> tuple[Tensor, Tensor]:
        f, g = fun(theta)
        t = theta[:n_l2]
        return f + 0.5 * l2 * (t * t).sum(), torch.cat([g[:n_l2] + l2 * t, g[n_l2:]])

    return penalised


def check_penalties(l1: float, l2: float) -> None:
    for name, v in (("l1", l1), ("l2", l2)):
        if not (isinstance(v, (int, float)) and v >= 0 and np.isfinite(v)):
            raise KakusanError(f"{name} must be a non-negative number, got {v!r}")


class LbfgsInfo(NamedTuple):
    """What :func:`minimize_lbfgs` reports: iterations, success, final value, stop message."""

    iterations: int
    converged: bool
    objective: float
    message: str


def minimize_lbfgs(fun: ValueAndGrad, theta0: Tensor, *, n_l1: int = 0, l1: float = 0.0, max_iter: int = 1000,
                   tol: float = 1e-5, ftol: float | None = None) -> tuple[Tensor, LbfgsInfo]:
    """min_θ f(θ) + l1 Σ_{i<n_l1} |θ_i| by L-BFGS-B, with f and ∇f evaluated by ``fun`` on θ's device.

    The L1 term is made smooth by splitting θ_i = u_i − v_i with u, v ≥ 0 for the first ``n_l1``
    entries (the penalty becomes the linear l1 Σ (u + v) under bound constraints), which L-BFGS-B
    solves exactly. Only the (P,) parameter vector crosses to scipy; the work stays in ``fun``.

    Parameters
    ----------
    fun : θ (P,) -> (f (0-d), ∇f (P,)), tensors.
    theta0 : (P,) starting point; its dtype and device are those ``fun`` receives (θ is returned in float64).
    n_l1, l1 : how many leading entries carry the L1 penalty, and its weight λ ≥ 0.
    max_iter : L-BFGS-B iteration limit.
    tol : stop when every projected gradient component is ≤ ``tol``.
    ftol : or when a step lowers f by less than ``ftol``·max(|f|, 1); None: 1e-15 for float64 θ and 1e-10 for
        float32, where f (accumulated in float64 from float32 terms) cannot resolve smaller decreases.
    """
    from scipy.optimize import minimize

    like = theta0
    split = n_l1 if l1 > 0 else 0
    if ftol is None:
        ftol = 1e-15 if theta0.dtype == torch.float64 else 1e-10

    def to_theta(z: np.ndarray) -> Tensor:
        z = torch.as_tensor(z, dtype=like.dtype).to(like.device)
        return torch.cat([z[:split] - z[split:2 * split], z[2 * split:]]) if split else z

    def wrapped(z: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = fun(to_theta(z))
        f, g = float(f), g.detach().to(torch.float64).cpu().numpy()
        if not (np.isfinite(f) and np.isfinite(g).all()):
            raise KakusanError("the objective overflowed during the line search (parameters running off to "
                               "infinity, e.g. perfectly separable data): add a penalty such as l2=1e-3")
        if split:
            gl = g[:split]
            f = f + l1 * float(np.sum(z[:2 * split]))
            g = np.concatenate([gl + l1, l1 - gl, g[split:]])
        return float(f), g

    t0 = theta0.detach().to(torch.float64).cpu().numpy()
    z0 = np.concatenate([np.maximum(t0[:split], 0), np.maximum(-t0[:split], 0), t0[split:]]) if split else t0
    bounds = [(0.0, None)] * (2 * split) + [(None, None)] * (len(t0) - split) if split else None
    with _one_blas_thread():  # L-BFGS-B's own vector work is tiny: BLAS threads only add wake-up latency
        res = minimize(wrapped, z0, jac=True, method="L-BFGS-B", bounds=bounds,
                       options=dict(maxiter=max_iter, gtol=tol, ftol=ftol, maxcor=20, maxls=40))
    message = res.message if isinstance(res.message, str) else res.message.decode()
    return to_theta(res.x).to(torch.float64), LbfgsInfo(int(res.nit), bool(res.success), float(res.fun), message)


def _one_blas_thread():
    """Limit NumPy/SciPy's BLAS (not torch's) to one thread, where threadpoolctl is installed."""
    controller = _blas_controller()
    return contextlib.nullcontext() if controller is None else controller.limit(limits=1, user_api="blas")


@functools.lru_cache(maxsize=1)
def _blas_controller():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - comes with scikit-learn
        return None
    return ThreadpoolController()


# ---------------------------------------------------------------- the dispatcher


def _solvers() -> dict[str, Callable[..., InverseResult]]:
    from kakusan.learn.mean_field import solve_nmf, solve_sm, solve_tap
    from kakusan.learn.mpf import solve_mpf
    from kakusan.learn.pseudolikelihood import solve_plm

    return {"nmf": solve_nmf, "tap": solve_tap, "sm": solve_sm, "plm": solve_plm, "mpf": solve_mpf,
            "exact": solve_exact}


METHODS: tuple[str, ...] = ("nmf", "tap", "sm", "plm", "mpf", "exact")
"""Names :func:`solve` accepts."""


def solve(data, method: Method = "plm", *, weights=None, **options) -> InverseResult:
    """Couplings J and fields h of q(x) ∝ exp(½ xᵀJx + hᵀx) from ±1 data (M, N) by the named method.

    Parameters
    ----------
    data : (M, N) ±1 array or tensor (0/1 data: convert with ``kakusan.data.to_spins``).
    method : one of :data:`METHODS`; see the module docstring.
    weights : optional (M,) non-negative sample weights.
    **options : passed to the method's ``solve_*`` function (e.g. ``l2=0.01`` or ``symmetric=False`` for plm);
        an option the method does not take is a :class:`~kakusan.errors.KakusanError` listing those it does.

    Returns
    -------
    InverseResult
    """
    solvers = _solvers()
    if method not in solvers:
        raise KakusanError(f"unknown inverse-Ising method {method!r}: choose from {', '.join(METHODS)}")
    fn = solvers[method]
    accepted = [p for p in inspect.signature(fn).parameters if p not in ("data", "weights")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise KakusanError(f"method {method!r} takes no option {', '.join(unknown)}: it takes {', '.join(accepted)}")
    return fn(data, weights=weights, **options)


def solve_exact(data, *, weights=None, l2: float = 0.0, l1: float = 0.0, max_iter: int = 1000,
                tol: float = 1e-9) -> InverseResult:
    """Maximum likelihood, min_θ −θᵀ⟨φ⟩_data + log Z(θ) (= KL(p0||q) + H(p0)), by L-BFGS on exact statistics.

    The gradient ⟨φ⟩_model − ⟨φ⟩_data (φ = (x_k x_l, x_k)) comes from enumerating all 2^N states
    (:func:`kakusan.boltzmann.exact.exact_stats`), so this is the exact maximum-likelihood estimate — the
    accuracy ceiling of every method here — for N ≲ 26. ``l2``/``l1`` penalise the couplings as in
    :func:`~kakusan.learn.pseudolikelihood.solve_plm`. :func:`kakusan.learn.fit_boltzmann` reaches the same
    optimum by moment matching with the η = 1/L method, in more (cheaper) steps.
    """
    from kakusan.boltzmann.exact import IsingParams, exact_stats
    from kakusan.learn.base import Stats

    t0 = time.perf_counter()
    check_penalties(l1, l2)
    x, w = check_spins(data, weights)
    n, data_stats = x.shape[1], Stats.of(x, w)
    phi_data = pack(data_stats.corr, data_stats.mean)

    def fun(theta: Tensor) -> tuple[Tensor, Tensor]:
        J, h = unpack(theta, n)
        s = exact_stats(IsingParams(J, h))
        return theta.new_tensor(s.log_z) - theta @ phi_data, pack(s.corr, s.mean) - phi_data

    p = n_coupling_params(n, True)
    theta0 = pack(torch.zeros(n, n, dtype=x.dtype, device=x.device), torch.atanh(data_stats.mean))
    theta, info = minimize_lbfgs(with_l2(fun, p, l2), theta0, n_l1=p, l1=l1, max_iter=max_iter, tol=tol)
    J, h = unpack(theta, n)
    return InverseResult(J, h, "exact", info.iterations, info.converged, time.perf_counter() - t0, info.objective,
                         info.message)
