"""The samplers and classifier-free guidance, driven by the exact Gaussian-mixture denoiser ε* (MixtureTruth).

Distribution: every sampler's x_0 must pass a two-sample test against fresh draws of the target mixture (D = 2
and 16, K = 3, linear schedule, T = 1000): the energy distance with a permutation null (p ≥ 0.01) and the mean
within 5 standard errors. The same test must reject (p at its floor, and the statistic far out in the null) two
negative controls: sampling with the cosine schedule when the truth runs on the linear one, and DDPM with its
noise term dropped.

Convergence order (fixed x_T, linear schedule, the exact ε*; errors are medians over 64 trajectories of ‖·‖;
steps N = 20 … 250, divisors of T so that the grid is uniform):

* The ODE solvers' own order, on the state at t = 200 (a grid time for every N used) against a 1000-step Heun
  reference: the fitted log-log slope is ≈ 1 for DDIM (0.8–1.3 accepted) and ≈ 2 for DPM-Solver++(2M) and Heun
  (1.6–2.6); measured 1.00–1.03, 2.0–2.1 and 2.05–2.08 (D = 2 and 16, several seeds).
* The error of x_0 itself against a 1000-step DPM-Solver++(2M) reference: ≈ 1 for DDIM (0.95), ≈ 2 for
  DPM-Solver++(2M) (2.1–2.3). Heun's falls only as ≈ N^−1.5: on a grid uniform in t both schedules have
  σ̃² ∝ t near t = 0, so the final Euler jump x_N = x̂0 from t_{N−1} = T/N (the step without a corrector) costs
  ½ σ̃(T/N)² |d²x̃/dσ̃²|, with σ̃(T/N)² ≈ 0.1/N + 10/N² on the linear schedule (O(1/N), ≈ N^−1.5 over this
  range), and that is Heun's whole x_0 error here — the test checks the decomposition (Heun's x_0 error over
  the jump's error from the reference state at t_{N−1} lies in [0.7, 1.3]; measured 0.83–0.95). DPM-Solver++(2M)'s earlier steps happen to cancel most of the same jump error. As N → ∞
  this O(1/N) term makes every sampler first order on this grid.

The linear schedule is the one with clean orders: the cosine schedule's clipped last β makes α_T ≈ 5·10⁻⁵, so
the first step spans σ̃ from ≈ 2·10⁴ to O(1) (Heun takes it by Euler: σ_max = 80), which spoils a reference.

Guidance: ε̃ is the conditional ε̂ at w = 1, the unconditional at w = 0 and the formula otherwise, from one
batched call; a class-conditional toy (class = mixture component; the exact ε* of that component, and of the
whole mixture for the null label) sampled with w = 1 matches its component, with w = 0 the mixture.
Also: DDIM with η = 1 is DDPM with β̃ draw for draw, callbacks, NFE counts, and one-line errors for bad input.
"""

import math

import numpy as np
import pytest
import torch

from kakusan.diffusion import MixtureTruth, Schedule
from kakusan.diffusion import samplers as S
from kakusan.diffusion.guidance import classifier_free
from kakusan.diffusion.model import Diffusion, DiffusionConfig
from kakusan.diffusion.nets import MLPDenoiserConfig
from kakusan.diffusion.process import ScheduleConfig
from kakusan.errors import KakusanError

F64 = torch.float64
LINEAR = Schedule("linear", 1000)
COSINE = Schedule("cosine", 1000)
N_SAMPLES = 1000
N_PERM = 300
P_MIN = 0.01


def truth(D: int, seed: int = 0) -> MixtureTruth:
    return MixtureTruth.example(D, 3, schedule=LINEAR, seed=seed)


# -- the two-sample test -------------------------------------------------------------------------------------


def energy_test(x: torch.Tensor, y: torch.Tensor, n_perm: int = N_PERM, seed: int = 0) -> tuple[float, float]:
    """(p-value, z) of the energy distance 2 E‖X − Y‖ − E‖X − X'‖ − E‖Y − Y'‖ under a permutation null
    (z: the statistic's distance from the null's mean in null standard deviations)."""
    z = torch.cat([x, y]).to(F64)
    n, N = len(x), len(x) + len(y)
    m = N - n
    d = torch.cdist(z, z)
    g = torch.Generator().manual_seed(seed)
    labels = torch.zeros(n_perm + 1, N, dtype=F64)
    labels[0, :n] = 1
    labels[1:].scatter_(1, torch.rand(n_perm, N, generator=g).argsort(1)[:, :n], 1.0)
    dl = labels @ d
    s_xx = (dl * labels).sum(1)
    s_xy = (dl * (1 - labels)).sum(1)
    s_yy = d.sum() - s_xx - 2 * s_xy
    e = 2 * s_xy / (n * m) - s_xx / n**2 - s_yy / m**2
    p = float((1 + (e[1:] >= e[0]).sum()) / (n_perm + 1))
    return p, float((e[0] - e[1:].mean()) / e[1:].std())


def mean_z(x: torch.Tensor, target: MixtureTruth) -> torch.Tensor:
    """Per-dimension z-scores of the sample mean against the mixture's exact mean and variance."""
    w, mu, cov = target.weights, target.means, target.covariances
    mean = (w[:, None] * mu).sum(0)
    var = (w[:, None] * (torch.diagonal(cov, dim1=1, dim2=2) + mu**2)).sum(0) - mean**2
    return (x.to(F64).mean(0) - mean) / (var / len(x)).sqrt()


def assert_matches(x: torch.Tensor, target: MixtureTruth, seed: int, what: str) -> None:
    g = torch.Generator().manual_seed(10_000 + seed)
    p, z = energy_test(x, target.sample(len(x), g), seed=seed)
    assert p >= P_MIN, f"{what}: energy two-sample test rejects the target, p = {p:.4f} (z = {z:.1f})"
    zm = mean_z(x, target)
    assert float(zm.abs().max()) < 5, f"{what}: sample mean off by {zm.abs().max():.1f} s.e."


def assert_rejected(x: torch.Tensor, target: MixtureTruth, seed: int, what: str) -> None:
    g = torch.Generator().manual_seed(10_000 + seed)
    p, z = energy_test(x, target.sample(len(x), g), seed=seed)
    assert p <= 1 / (N_PERM + 1) and z > 20, f"negative control {what} passed: p = {p:.4f}, z = {z:.1f}"


# -- samples match the target ------------------------------------------------------------------------------------

CASES = [("ddpm", 250, {}), ("ddpm", 250, {"variance": "large"}), ("ddim", 50, {}), ("ddim", 100, {"eta": 0.5}),
         ("dpm++2m", 50, {}), ("dpm++2m-sde", 20, {}), ("dpm++2m-sde", 50, {}), ("heun", 50, {})]
CASE_IDS = [f"{name}-{steps}" + "".join(f"-{k}={v}" for k, v in options.items()) for name, steps, options in CASES]


@pytest.mark.slow
@pytest.mark.parametrize("D", [2, 16])
@pytest.mark.parametrize("name,steps,options", CASES, ids=CASE_IDS)
def test_samples_match_the_mixture(name, steps, options, D):
    target = truth(D)
    g = torch.Generator().manual_seed(D * 100 + steps)
    x_T = torch.randn(N_SAMPLES, D, generator=g, dtype=F64)
    x = S.get_sampler(name)(target, x_T, LINEAR, steps, g, **options)
    assert x.shape == x_T.shape and x.dtype == F64 and bool(torch.isfinite(x).all())
    assert_matches(x, target, seed=D + steps, what=f"{name} {steps} steps {options} D={D}")


@pytest.mark.slow
@pytest.mark.parametrize("D", [2, 16])
def test_negative_control_wrong_schedule(D):
    """The truth's ε* is for the linear schedule; sampling on the cosine one must fail the same test."""
    target = truth(D)
    g = torch.Generator().manual_seed(D)
    x_T = torch.randn(N_SAMPLES, D, generator=g, dtype=F64)
    assert_matches(S.ddim(target, x_T, LINEAR, 50, g), target, seed=D, what="ddim on the right schedule")
    assert_rejected(S.ddim(target, x_T, COSINE, 50, g), target, seed=D, what="cosine schedule for a linear truth")


@pytest.mark.slow
@pytest.mark.parametrize("D", [2, 16])
def test_negative_control_ddpm_without_noise(D, monkeypatch):
    """DDPM with its noise term dropped (the posterior mean only) must fail the same test."""
    target = truth(D)
    g = torch.Generator().manual_seed(D)
    x_T = torch.randn(N_SAMPLES, D, generator=g, dtype=F64)
    monkeypatch.setattr(S, "_noise", lambda x, generator: torch.zeros_like(x))
    assert_rejected(S.ddpm(target, x_T, LINEAR, 250, g), target, seed=D, what="DDPM without noise")


def test_ddim_eta_one_is_ddpm_small_variance():
    target = truth(2)
    x_T = torch.randn(50, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    a = S.ddim(target, x_T, LINEAR, 40, torch.Generator().manual_seed(7), eta=1.0)
    b = S.ddpm(target, x_T, LINEAR, 40, torch.Generator().manual_seed(7), variance="small")
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    c = S.ddpm(target, x_T, LINEAR, 40, torch.Generator().manual_seed(7), variance="large")
    assert float((a - c).abs().max()) > 1e-3


def test_dpm_pp_2m_sde_first_step_is_ddpm_small_variance():
    """With two steps SDE-DPM-Solver++(2M) takes one first-order step (D = x̂0) and the final jump to x̂0: the
    same chain as DDPM with β̃, draw for draw; from three steps on its multistep D makes it differ."""
    target = truth(2)
    x_T = torch.randn(50, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    a = S.dpm_pp_2m_sde(target, x_T, LINEAR, 2, torch.Generator().manual_seed(7))
    b = S.ddpm(target, x_T, LINEAR, 2, torch.Generator().manual_seed(7), variance="small")
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    a = S.dpm_pp_2m_sde(target, x_T, LINEAR, 3, torch.Generator().manual_seed(7))
    b = S.ddpm(target, x_T, LINEAR, 3, torch.Generator().manual_seed(7), variance="small")
    assert float((a - b).abs().max()) > 1e-4


def gaussian_law(name: str, schedule: Schedule, steps: int, m: float = 0.5, s: float = 0.2,
                 monkeypatch=None) -> tuple[float, float]:
    """The exact mean and variance of a sampler's x_0 for 1-D data N(m, s²) with its exact (affine) denoiser and
    x_T ~ N(0, 1). Every step is affine in x_T and the noise draws, so x_0 = A x_T + b + Σ_j c_j z_j: one batch
    row carries x_T = 1, row j the j-th draw z_j = 1 (the sampler's ``_noise`` patched to hand out unit draws),
    the last row nothing (b); then E x_0 = b and Var x_0 = A² + Σ c_j²."""
    def denoiser(x, t, cond=None):
        a, sg = schedule.alpha_sigma(t.to(F64))
        return sg[:, None] * (x - a[:, None] * m) / (a[:, None] ** 2 * s * s + sg[:, None] ** 2)

    rows = steps + 2
    x = torch.zeros(rows, 1, dtype=F64)
    x[0] = 1.0
    draws = [0]

    def unit_draw(like, generator):
        draws[0] += 1
        z = torch.zeros_like(like)
        if draws[0] < rows - 1:
            z[draws[0]] = 1.0
        return z

    monkeypatch.setattr(S, "_noise", unit_draw)
    out = S.get_sampler(name)(denoiser, x, schedule, steps, torch.Generator().manual_seed(0))[:, 0]
    monkeypatch.undo()  # lifts every patch of the test, the negative control's too, once this run is done
    b = float(out[-1])
    return b, (float(out[0]) - b) ** 2 + float(((out[1:-1] - b) ** 2).sum())


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_sde_solver_weak_error_on_gaussian_data(kind, monkeypatch):
    """The exact law of x_0 on N(0.5, 0.2²) data: SDE-DPM-Solver++(2M)'s variance error falls faster than DDPM's
    (log-log slope over N = 250, 500, 1000: ≥ 1.4 against DDPM's 0.7–1.1; measured 1.4–1.9 and 0.85–0.9; at
    N = T = 1000 DDPM keeps β̃'s bias, 1.5·10⁻³ on the linear schedule, the SDE solver 9·10⁻⁵) and is smaller at
    20 steps; both means are exact up to x_T's N(0, 1) against q(x_T)'s mean α_T m. A wrong noise scale fails."""
    schedule = Schedule(kind, 1000)
    alpha_T = float(schedule.alpha_sigma(torch.tensor([1000.0], dtype=F64))[0])
    Ns = [250, 500, 1000]
    slopes = {}
    for name in ("ddpm", "dpm++2m-sde"):
        laws = [gaussian_law(name, schedule, n, monkeypatch=monkeypatch) for n in [20, *Ns]]
        for mean, _ in laws:
            assert abs(mean - 0.5) <= 0.5 * alpha_T**2 + 1e-9, (name, mean)
        err = np.abs([v - 0.04 for _, v in laws])
        slopes[name] = -np.polyfit(np.log(Ns), np.log(err[1:]), 1)[0]
        slopes[name + "@20"] = err[0]
    assert slopes["dpm++2m-sde"] >= 1.4 and 0.7 <= slopes["ddpm"] <= 1.1, slopes
    assert slopes["dpm++2m-sde@20"] < slopes["ddpm@20"], slopes
    # negative control: σ_n √(1 − e^{−h}) instead of σ_n √(1 − e^{−2h}) leaves the variance off at any N
    real = math.sqrt
    monkeypatch.setattr(S.math, "sqrt", lambda v: real(1 - (1 - v) ** 0.5) if 0 < v < 1 else real(v))
    _, wrong = gaussian_law("dpm++2m-sde", schedule, 1000, monkeypatch=monkeypatch)  # (sqrt restored after it)
    _, right = gaussian_law("dpm++2m-sde", schedule, 1000, monkeypatch=monkeypatch)
    assert abs(wrong - 0.04) > 10 * abs(right - 0.04), (wrong, right)


def test_deterministic_samplers_ignore_the_generator_and_stochastic_ones_use_it():
    target = truth(2)
    x_T = torch.randn(20, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    for name in ["ddim", "dpm++2m", "heun"]:
        a = S.get_sampler(name)(target, x_T, LINEAR, 10, None)
        b = S.get_sampler(name)(target, x_T, LINEAR, 10, torch.Generator().manual_seed(3))
        assert torch.equal(a, b)
    for fn in (S.ddpm, S.dpm_pp_2m_sde):
        a = fn(target, x_T, LINEAR, 10, torch.Generator().manual_seed(1))
        b = fn(target, x_T, LINEAR, 10, torch.Generator().manual_seed(1))
        c = fn(target, x_T, LINEAR, 10, torch.Generator().manual_seed(2))
        assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(x_T, torch.randn(20, 2, generator=torch.Generator().manual_seed(0), dtype=F64))  # untouched


@pytest.mark.parametrize("name,kind", [(name, kind) for name in S.SAMPLERS for kind in ("linear", "cosine")])
def test_float32_input_gives_float32_output(name, kind):
    """float32 x: float32 result, close to the float64 run (the cosine schedule's α_T ≈ 5e-5 included)."""
    schedule = Schedule(kind, 1000)
    target = MixtureTruth.example(2, 3, schedule=schedule, seed=0)
    x_T = torch.randn(100, 2, generator=torch.Generator().manual_seed(0))
    x = S.get_sampler(name)(target, x_T, schedule, 20, torch.Generator().manual_seed(1))
    assert x.dtype == torch.float32 and bool(torch.isfinite(x).all())
    ref = S.get_sampler(name)(target, x_T.double(), schedule, 20, torch.Generator().manual_seed(1))
    if name not in ("ddpm", "dpm++2m-sde"):  # the stochastic samplers' noise draws differ between dtypes
        # float32 x_T holds x_0's signal only at the level α_T (cosine: 5e-5) against its rounding (6e-8)
        diff = (x.double() - ref).abs()
        assert float(diff.median()) < 1e-4 and float(diff.max()) < 1e-2


# -- convergence order ------------------------------------------------------------------------------------------

ORDER_STEPS = [20, 25, 40, 50, 100, 125, 200, 250]  # divisors of T = 1000 (a uniform grid) and of 800 (t = 200 on it)
T_MID = 200


def slope(steps, errors) -> float:
    """−(fitted log-log slope) of error against steps: the order of convergence."""
    return -float(np.polyfit(np.log(steps), np.log(errors), 1)[0])


def _run(name, target, x_T, steps, **options):
    states = {}
    x = S.get_sampler(name)(target, x_T, LINEAR, steps, None,
                            callback=lambda i, t, x, x0: states.__setitem__(round(t), x.clone()), **options)
    return x, states


@pytest.fixture(scope="module", params=[2, 16], ids=["D2", "D16"])
def order_errors(request):
    D = request.param
    target = truth(D, seed=1)
    x_T = torch.randn(64, D, generator=torch.Generator().manual_seed(D), dtype=F64)
    _, ref_states = _run("heun", target, x_T, 1000, sigma_max=math.inf)  # the trapezoid on every step
    ref_x0, ref_states_dpm = _run("dpm++2m", target, x_T, 1000)
    mid, final, jump = {"reference": float((ref_states[T_MID] - ref_states_dpm[T_MID]).norm(dim=1).max())}, {}, {}
    for name in ["ddim", "dpm++2m", "heun"]:
        mid[name], final[name], jump[name] = [], [], []
        for steps in ORDER_STEPS:
            x, states = _run(name, target, x_T, steps)
            mid[name].append(float((states[T_MID] - ref_states[T_MID]).norm(dim=1).median()))
            final[name].append(float((x - ref_x0).norm(dim=1).median()))
            # the final jump alone: x̂0 from the reference state at t_{N−1} = T/N
            t1 = LINEAR.T // steps
            a, s = (float(v) for v in LINEAR.alpha_sigma(torch.tensor(float(t1), dtype=F64)))
            x_ref = ref_states_dpm[t1]
            jump[name].append(float(((x_ref - s * target(x_ref, t1)) / a - ref_x0).norm(dim=1).median()))
    return mid, final, jump


ORDERS = {"ddim": (0.8, 1.3), "dpm++2m": (1.6, 2.6), "heun": (1.6, 2.6)}


@pytest.mark.slow
def test_the_references_agree(order_errors):
    """The 1000-step Heun and DPM-Solver++(2M) solutions agree at t = 200 far below the errors measured."""
    mid, _, _ = order_errors
    assert mid["reference"] < 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ORDERS))
def test_ode_order_in_the_bulk(order_errors, name):
    mid, _, _ = order_errors
    errors = mid[name]
    assert all(b < a for a, b in zip(errors, errors[1:])), f"{name}: error at t = {T_MID} not decreasing: {errors}"
    p = slope(ORDER_STEPS, errors)
    lo, hi = ORDERS[name]
    assert lo <= p <= hi, f"{name}: order {p:.2f} at t = {T_MID}, expected [{lo}, {hi}] (errors {errors})"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ddim", "dpm++2m"])
def test_x0_order(order_errors, name):
    _, final, _ = order_errors
    p = slope(ORDER_STEPS, final[name])
    lo, hi = ORDERS[name]
    assert lo <= p <= hi, f"{name}: x_0 order {p:.2f}, expected [{lo}, {hi}] (errors {final[name]})"


@pytest.mark.slow
def test_heun_x0_error_is_its_final_euler_jump(order_errors):
    """Heun's x_0 error is that of the Euler jump x̂0 from t_{N−1} = T/N (σ̃² ∝ t there: O(1/N)); its
    integration before that is second order (test_ode_order_in_the_bulk)."""
    mid, final, jump = order_errors
    ratio = np.array(final["heun"]) / np.array(jump["heun"])
    assert bool(((ratio > 0.7) & (ratio < 1.3)).all()), f"heun x_0 error / final-jump error = {ratio}"
    assert 1.1 <= slope(ORDER_STEPS, final["heun"]) <= 1.9
    assert all(f < d for f, d in zip(final["heun"], final["ddim"]))


# -- guidance -----------------------------------------------------------------------------------------------------


class FakeConditional:
    """A deterministic conditional 'network' ε̂(x, t, y) that records its calls."""

    def __init__(self):
        self.calls = []

    def __call__(self, x, t, cond):
        self.calls.append((len(x), None if cond is None else cond.clone()))
        t = torch.as_tensor(t, dtype=x.dtype).reshape(-1, *([1] * (x.ndim - 1)))
        c = 0.0 if cond is None else cond.to(x.dtype).reshape(-1, *([1] * (x.ndim - 1)))
        return torch.sin(x * (1 + c)) + 0.001 * t + 0.1 * c


def test_guidance_formula_and_its_ends():
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    t = torch.full((7,), 123.0, dtype=F64)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 1])
    null = 3
    net = FakeConditional()
    cond, uncond = net(x, t, y), net(x, t, torch.full((7,), null))
    for w in [0.0, 1.0, 2.5, -0.5, 7]:
        net.calls.clear()
        out = classifier_free(net, w, null)(x, t, y)
        torch.testing.assert_close(out, uncond + w * (cond - uncond), rtol=1e-12, atol=1e-12)
        assert len(net.calls) == 1, "guidance must make one batched call"
        size, labels = net.calls[0]
        if w in (0.0, 1.0):
            assert size == 7
        else:
            assert size == 14 and torch.equal(labels, torch.cat([y, torch.full((7,), null)]))
    assert torch.equal(classifier_free(net, 1.0, null)(x, t, y), cond)
    assert torch.equal(classifier_free(net, 0.0, null)(x, t, y), uncond)
    assert torch.equal(classifier_free(net, 3.0, null)(x, t, None), net(x, t, None))  # no labels: plain
    # scalar times and a single label broadcast
    out = classifier_free(net, 2.0, null)(x, 123.0, torch.tensor(1))
    torch.testing.assert_close(out, net(x, t, torch.full((7,), null)) + 2 * (net(x, t, torch.ones(7, dtype=torch.long))
                                                                         - net(x, t, torch.full((7,), null))))


def test_guidance_bad_weight_is_a_one_line_error():
    for bad in [float("nan"), "2", None]:
        with pytest.raises(KakusanError) as info:
            classifier_free(FakeConditional(), bad, 3)
        assert "\n" not in str(info.value)


def conditional_toy(target: MixtureTruth):
    """ε*(x, t, y): class y = the mixture's component y (its exact ε*), the null label K = the whole mixture."""
    K = len(target.weights)
    parts = [MixtureTruth(torch.ones(1, dtype=F64), target.means[k:k + 1], target.covariances[k:k + 1],
                          target.schedule) for k in range(K)] + [target]

    def eps(x, t, cond):
        out = torch.empty_like(x)
        t = torch.as_tensor(t, dtype=F64).expand(len(x)) if torch.as_tensor(t).ndim == 0 else t
        for k, part in enumerate(parts):
            rows = cond == k
            if rows.any():
                out[rows] = part(x[rows], t[rows])
        return out

    return eps, parts


@pytest.mark.slow
@pytest.mark.parametrize("D", [2, 16])
def test_guided_sampling_of_a_conditional_toy(D):
    target = truth(D)
    eps, parts = conditional_toy(target)
    K = len(parts) - 1
    g = torch.Generator().manual_seed(5)
    x_T = torch.randn(N_SAMPLES, D, generator=g, dtype=F64)
    for k in range(K):
        y = torch.full((N_SAMPLES,), k)
        x = S.dpm_pp_2m(classifier_free(eps, 1.0, K), x_T, LINEAR, 50, g, cond=y)
        assert_matches(x, parts[k], seed=k, what=f"class {k} with w = 1")
    y = torch.zeros(N_SAMPLES, dtype=torch.long)
    x = S.dpm_pp_2m(classifier_free(eps, 0.0, K), x_T, LINEAR, 50, g, cond=y)
    assert_matches(x, target, seed=K, what="w = 0 (unconditional)")
    assert_rejected(S.dpm_pp_2m(classifier_free(eps, 1.0, K), x_T, LINEAR, 50, g, cond=y), target, seed=K,
                    what="class 0 against the whole mixture")
    # the batched path (w ∉ {0, 1}) at w = 1 + 1e-12 gives the conditional samples
    x_batched = S.dpm_pp_2m(classifier_free(eps, 1.0 + 1e-12, K), x_T, LINEAR, 50, g, cond=y)
    x_cond = S.dpm_pp_2m(classifier_free(eps, 1.0, K), x_T, LINEAR, 50, g, cond=y)
    torch.testing.assert_close(x_batched, x_cond, rtol=1e-8, atol=1e-8)


# -- callbacks, NFE, the model, bad input ----------------------------------------------------------------------


class Counting:
    def __init__(self, fn):
        self.fn, self.n = fn, 0

    def __call__(self, x, t, cond=None):
        self.n += 1
        return self.fn(x, t, cond)


@pytest.mark.parametrize("name", list(S.SAMPLERS))
@pytest.mark.parametrize("steps", [1, 2, 7])
def test_callbacks_and_nfe(name, steps):
    target = truth(2)
    den = Counting(target)
    x_T = torch.randn(30, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    seen = []
    x = S.get_sampler(name)(den, x_T, LINEAR, steps, torch.Generator().manual_seed(1),
                            callback=lambda i, t, x, x0: seen.append((i, t, x.clone(), x0.clone())))
    assert [s[0] for s in seen] == list(range(steps))
    assert [s[1] for s in seen] == LINEAR.timesteps(steps)[1:].tolist()
    assert seen[-1][1] == 0 and torch.equal(seen[-1][2], x) and torch.equal(seen[-1][3], x)  # lands on x̂0
    # heun: no corrector on the last step, nor on the first (linear schedule: σ̃_T = 156 > σ_max = 80)
    assert den.n == S.nfe(name, steps, LINEAR) == (2 * steps - 1 - (steps > 1) if name == "heun" else steps)
    assert S.nfe(name, steps) == (2 * steps - 1 if name == "heun" else steps)


def test_times_handed_to_the_denoiser():
    seen = []
    target = truth(2)

    def den(x, t, cond):
        seen.append(t.clone())
        return target(x, t, cond)

    S.dpm_pp_2m(den, torch.randn(5, 2, dtype=F64), LINEAR, 4, None)
    assert all(t.dtype == F64 and t.shape == (5,) for t in seen)
    assert [float(t[0]) for t in seen] == [1000.0, 750.0, 500.0, 250.0]


@pytest.mark.parametrize("name", list(S.SAMPLERS))
@pytest.mark.parametrize("n_classes,guidance", [(0, 1.0), (3, 1.0), (3, 2.5)])
def test_model_sample_runs_every_sampler(name, n_classes, guidance):
    config = DiffusionConfig(data_shape=(2,), schedule=ScheduleConfig("linear", 100), n_classes=n_classes,
                             denoiser=MLPDenoiserConfig(hidden=16, depth=1, time_dim=8))
    torch.manual_seed(0)
    model = Diffusion(config)
    calls = []
    x = model.sample(6, 0, sampler=name, steps=5, guidance=guidance, callback=lambda *a: calls.append(a[0]))
    assert x.shape == (6, 2) and x.dtype == torch.float32 and bool(torch.isfinite(x).all())
    assert calls == list(range(5))
    assert torch.equal(x, model.sample(6, 0, sampler=name, steps=5, guidance=guidance))


def _one_line_error(fn, match):
    with pytest.raises(KakusanError, match=match) as info:
        fn()
    assert "\n" not in str(info.value)
    return str(info.value)


def test_bad_input_gives_one_line_errors():
    target = truth(2)
    x_T = torch.randn(4, 2, dtype=F64)
    message = _one_line_error(lambda: S.get_sampler("euler"), "unknown sampler 'euler'")
    assert all(name in message for name in S.SAMPLERS)
    _one_line_error(lambda: S.get_sampler(None), "unknown sampler")
    _one_line_error(lambda: S.nfe("dpm2", 10), "unknown sampler")
    for name, fn in S.SAMPLERS.items():
        _one_line_error(lambda: fn(target, x_T, LINEAR, 1001, None), "exceed the schedule's T = 1000")
        _one_line_error(lambda: fn(target, x_T, LINEAR, 0, None), "steps must be a positive integer")
        _one_line_error(lambda: fn(target, x_T, LINEAR, -3, None), "steps must be a positive integer")
        _one_line_error(lambda: fn(target, x_T, LINEAR, 2.5, None), "steps must be a positive integer")
        _one_line_error(lambda: fn(target, x_T.numpy(), LINEAR, 5, None), "x_T must be a floating-point tensor")
        _one_line_error(lambda: fn(target, x_T, "linear", 5, None), "schedule must be")
        _one_line_error(lambda: fn(lambda x, t, c: x[:, :1], x_T, LINEAR, 5, None), "the denoiser must return")
    _one_line_error(lambda: S.ddpm(target, x_T, LINEAR, 5, None, variance="fixed"), "unknown DDPM variance")
    _one_line_error(lambda: S.ddim(target, x_T, LINEAR, 5, None, eta=1.5), "eta must lie in")
    _one_line_error(lambda: S.nfe("heun", 0), "steps must be a positive integer")
    model = Diffusion(DiffusionConfig(schedule=ScheduleConfig("linear", 50),
                                      denoiser=MLPDenoiserConfig(hidden=8, depth=1, time_dim=8)))
    _one_line_error(lambda: model.sample(3, 0, sampler="plms"), "unknown sampler 'plms'")
    _one_line_error(lambda: model.sample(3, 0, steps=51), "exceed the schedule's T = 50")


def test_full_respacing_uses_every_step():
    assert LINEAR.timesteps(1000).tolist() == list(range(1000, -1, -1))
    assert math.isclose(S.nfe("heun", 1000), 1999)
