"""The probability-flow ODE likelihood against the exact densities of Gaussian mixtures (and of a zero network)."""

import math

import numpy as np
import pytest
import torch

import kakusan.diffusion.ode as ode
from kakusan.diffusion import MixtureTruth, Schedule
from kakusan.diffusion.model import Diffusion, DiffusionConfig
from kakusan.diffusion.nets import MLPDenoiserConfig
from kakusan.diffusion.ode import ode_log_likelihood, ode_nll, probability_flow
from kakusan.diffusion.process import ScheduleConfig
from kakusan.errors import DataError, KakusanError
from kakusan.evaluate import Estimate

F64 = torch.float64
SCHEDULES = {kind: Schedule(kind, 1000) for kind in ("linear", "cosine")}


def exact_prior(truth, t=None):
    """log q_T, the exact marginal at the end (removes the O(α_T ‖x‖) mismatch of the N(0, I) prior)."""
    t = truth.schedule.T if t is None else t
    return lambda x: truth.log_prob(x, t)


def scaled_truth(truth: MixtureTruth, shift: float, scale: float) -> MixtureTruth:
    """The same mixture seen in x = (data − shift)/scale."""
    return MixtureTruth(truth.weights, (truth.means - shift) / scale, truth.covariances / scale**2, truth.schedule)


class Wrapper:
    """A Diffusion-like model around an exact denoiser in the network space x = (data − shift)/scale."""

    def __init__(self, truth_x: MixtureTruth, shift: float, scale: float, levels: int = 0):
        self.truth, self.schedule, self.shift, self.scale = truth_x, truth_x.schedule, shift, scale
        self.config = type("Config", (), {"levels": levels})()

    def denoiser(self, guidance: float = 1.0):
        return self.truth

    def to_model(self, data):
        return ((data - self.shift) / self.scale).to(F64)

    def log_jacobian(self) -> float:
        return -self.truth.dim * math.log(self.scale)


# -- exactness against the mixture ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("dim", [2, 16])
def test_log_likelihood_is_the_mixture_density(kind, dim):
    truth = MixtureTruth.example(dim, 3, SCHEDULES[kind], seed=1)
    x = truth.sample(30, 0)
    flow = probability_flow(truth, truth.schedule, x, divergence="exact", rtol=1e-6, atol=1e-6,
                            prior=exact_prior(truth))
    assert (flow.log_prob - truth.log_prob(x)).abs().max() < 1e-3
    assert flow.log_prob.dtype == F64 and flow.log_prob.shape == (30,)
    assert 50 < flow.nfe < 1000 and flow.nfe == 2 + 6 * (flow.steps + flow.rejected)
    # the flow carries the data to the prior: x_T ~ N(0, I) in distribution (a rough check on 30 points)
    assert abs(float(flow.x_end.pow(2).mean()) - 1) < 0.5


def test_standard_normal_prior_costs_little_with_the_cosine_schedule():
    # ᾱ_T ≈ 2e-9 for the cosine schedule at T = 1000: log q_T and log N(0, I) agree to ~1e-4 on these points
    truth = MixtureTruth.example(16, 3, SCHEDULES["cosine"], seed=1)
    x = truth.sample(30, 0)
    logp = ode_log_likelihood(truth, truth.schedule, x, rtol=1e-6, atol=1e-6)
    assert (logp - truth.log_prob(x)).abs().max() < 2e-3


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_from_t_min_to_t_max_gives_the_noised_marginal(kind):
    truth = MixtureTruth.example(2, 3, SCHEDULES[kind], seed=2)
    alpha, sigma = truth.schedule.alpha_sigma(torch.tensor(100.0))
    x = alpha * truth.sample(40, 3) + sigma * torch.randn(40, 2, generator=torch.Generator().manual_seed(4), dtype=F64)
    logp = ode_log_likelihood(truth, truth.schedule, x, t_min=100.0, t_max=700.0, prior=exact_prior(truth, 700.0),
                              rtol=1e-6, atol=1e-6)
    assert (logp - truth.log_prob(x, 100.0)).abs().max() < 1e-4
    assert (logp - truth.log_prob(x, 0.0)).abs().max() > 0.1  # and not the data density


def test_error_shrinks_with_the_tolerance():
    truth = MixtureTruth.example(2, 3, SCHEDULES["linear"], seed=1)
    x = truth.sample(30, 0)
    errors, nfes = [], []
    for tol in (1e-3, 1e-4, 1e-5, 1e-6):
        flow = probability_flow(truth, truth.schedule, x, rtol=tol, atol=tol, prior=exact_prior(truth))
        errors.append(float((flow.log_prob - truth.log_prob(x)).abs().max()))
        nfes.append(flow.nfe)
    assert all(b < a for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < errors[0] / 20 and errors[-1] < 3e-5, errors
    assert nfes == sorted(nfes) and nfes[0] < nfes[-1]


def test_a_wrong_schedule_gives_a_wrong_density():
    # the negative control: ε* of the linear-schedule truth, integrated as if the schedule were cosine
    truth = MixtureTruth.example(2, 3, SCHEDULES["linear"], seed=1)
    x = truth.sample(30, 0)
    right = ode_log_likelihood(truth, SCHEDULES["linear"], x, rtol=1e-5, atol=1e-5)
    wrong = ode_log_likelihood(truth, SCHEDULES["cosine"], x, rtol=1e-5, atol=1e-5)
    exact = truth.log_prob(x)
    assert (right - exact).abs().mean() < 0.02
    assert (wrong - exact).abs().mean() > 0.5


def test_gaussian_data_closed_form():
    # data N(0, s² I): the flow is x ↦ x/s, Δ = −D log s exactly
    s, D = 0.3, 3
    truth = MixtureTruth(torch.ones(1), torch.zeros(1, D), s**2 * torch.eye(D)[None], SCHEDULES["cosine"])
    x = s * torch.randn(10, D, generator=torch.Generator().manual_seed(0), dtype=F64)
    flow = probability_flow(truth, truth.schedule, x, rtol=1e-7, atol=1e-7)
    assert torch.allclose(flow.delta, torch.full((10,), -D * math.log(s), dtype=F64), atol=1e-4)
    assert torch.allclose(flow.x_end, x / s, atol=1e-4)


# -- the divergence ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("probe", ["rademacher", "gaussian"])
def test_hutchinson_is_unbiased(probe):
    truth = MixtureTruth.example(16, 3, SCHEDULES["cosine"], seed=1)
    points, probes = truth.sample(4, 5), 50
    x = points.repeat(probes, 1)  # every row draws its own probe
    exact = ode_log_likelihood(truth, truth.schedule, points, divergence="exact", rtol=1e-6, atol=1e-6)
    est = ode_log_likelihood(truth, truth.schedule, x, divergence="hutchinson", probe=probe, rtol=1e-5, atol=1e-5,
                             generator=7).reshape(probes, 4)
    mean, se = est.mean(0), est.std(0) / math.sqrt(probes)
    assert bool((est.std(0) > 0.05).all())  # the probes really vary
    z = (mean - exact) / se
    assert bool((z.abs() < 4).all()), z
    assert abs(float(z.sum()) / 2) < 4  # the four points together (√4 = 2)
    # the same generator gives the same probes
    again = ode_log_likelihood(truth, truth.schedule, x[:8], divergence="hutchinson", probe=probe, rtol=1e-3,
                               atol=1e-3, generator=7)
    first = ode_log_likelihood(truth, truth.schedule, x[:8], divergence="hutchinson", probe=probe, rtol=1e-3,
                               atol=1e-3, generator=7)
    assert torch.equal(again, first)


def test_exact_divergence_in_chunks_matches(monkeypatch):
    truth = MixtureTruth.example(16, 3, SCHEDULES["linear"], seed=3)
    x = truth.sample(4, 0)
    whole = ode_log_likelihood(truth, truth.schedule, x, divergence="exact")
    monkeypatch.setattr(ode, "EXACT_ROWS", 20)  # 5 basis directions per pass: 4 passes (5, 5, 5, 1)
    chunked = ode_log_likelihood(truth, truth.schedule, x, divergence="exact")
    assert torch.allclose(whole, chunked, atol=1e-10)


def test_auto_is_exact_up_to_64_dimensions():
    def check(dim, deterministic):
        # (a non-diagonal Jacobian: Rademacher probes are exact for a diagonal one)
        truth = MixtureTruth.example(dim, 1, SCHEDULES["cosine"], seed=0)
        x = truth.sample(2, 0)
        a = ode_log_likelihood(truth, truth.schedule, x, rtol=1e-4, atol=1e-4, generator=1)
        b = ode_log_likelihood(truth, truth.schedule, x, rtol=1e-4, atol=1e-4, generator=2)
        assert torch.equal(a, b) == deterministic
        assert (a - truth.log_prob(x)).abs().max() < (0.01 if deterministic else 5.0)

    check(64, True)
    check(65, False)


# -- data space: the Jacobian and dequantisation -----------------------------------------------------------


def test_ode_nll_continuous_data_gets_the_jacobian():
    data_truth = MixtureTruth.example(2, 3, SCHEDULES["cosine"], seed=4)
    shift, scale = 1.5, 3.0
    model = Wrapper(scaled_truth(data_truth, shift, scale), shift, scale)
    data = data_truth.sample(40, 0)
    est = ode_nll(model, data, rtol=1e-6, atol=1e-6, batch_size=15)
    assert isinstance(est, Estimate) and est.unit == "nats" and est.n == 40
    exact = -data_truth.log_prob(data)
    assert (est.per_example - exact).abs().max() < 1e-3
    assert abs(est.value - float(exact.mean())) < 1e-3
    assert math.isclose(est.stderr, float(exact.std()) / math.sqrt(40), rel_tol=1e-2)
    bits = ode_nll(model, data[:10], rtol=1e-6, atol=1e-6, unit="bits/dim")
    assert torch.allclose(bits.per_example, est.per_example[:10] / (2 * math.log(2)), atol=1e-3)


def _bin_bounds(data_truth: MixtureTruth, k: torch.Tensor, nodes: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Per example, by Gauss–Legendre quadrature over its 2-D bin [k/256, (k+1)/256)²: the dequantisation bound
    −E_u log p((k + u)/256) + 2 log 256 and the exact −log P(k) = −log ∫_bin p (nats)."""
    r, w = np.polynomial.legendre.leggauss(nodes)
    u = torch.tensor((r + 1) / 2, dtype=F64)
    w = torch.tensor(w / 2, dtype=F64)
    uu = torch.stack(torch.meshgrid(u, u, indexing="ij"), -1).reshape(-1, 2)  # (m, 2)
    ww = (w[:, None] * w[None, :]).reshape(-1)
    y = (k[:, None, :] + uu[None]) / 256  # (n, m, 2)
    logp = data_truth.log_prob(y.reshape(-1, 2)).reshape(len(k), -1)
    bound = -(logp * ww).sum(1) + 2 * math.log(256)
    exact = -(torch.logsumexp(logp + torch.log(ww), 1) - 2 * math.log(256))
    return bound, exact


def test_dequantised_8bit_bits_per_dim_match_the_bin_integrals():
    # a continuous density inside [0, 1]² seen on the 8-bit grid k/255
    means = torch.tensor([[0.3, 0.35], [0.7, 0.6], [0.45, 0.75]], dtype=F64)
    covs = torch.stack([torch.tensor([[0.006, 0.002], [0.002, 0.004]]), 0.003 * torch.eye(2),
                        torch.tensor([[0.004, -0.001], [-0.001, 0.005]])]).to(F64)
    data_truth = MixtureTruth(torch.tensor([0.3, 0.5, 0.2]), means, covs, SCHEDULES["cosine"])
    y = data_truth.sample(300, 0)
    k = (y * 256).floor().clamp(0, 255)
    data = k / 255
    model = Wrapper(scaled_truth(data_truth, 0.5, 0.5), 0.5, 0.5, levels=256)
    est = ode_nll(model, data, generator=0, rtol=1e-5, atol=1e-5)
    assert est.unit == "bits/dim" and "dequantisation" in est.method
    bound, exact = _bin_bounds(data_truth, k)
    to_bits = 1 / (2 * math.log(2))
    # per example, one draw of u against the bin average: unbiased, and the density barely varies over a bin
    diff = est.per_example - bound * to_bits
    se = float(diff.std()) / math.sqrt(len(diff))
    assert abs(float(diff.mean())) < 4 * se + 1e-4, (float(diff.mean()), se)
    # the bound sits just above the exact discrete NLL (Jensen), here within 0.001 bits/dim
    gap = (bound - exact) * to_bits
    assert float(gap.min()) >= -1e-9 and float(gap.mean()) < 1e-3
    assert abs(est.value - float(exact.mean()) * to_bits) < 4 * se + 2e-3
    # without dequantisation: the density at the grid points times the bin volume
    grid = ode_nll(model, data[:50], dequantise=False, rtol=1e-6, atol=1e-6)
    expected = (-data_truth.log_prob(data[:50]) + 2 * math.log(256)) * to_bits
    assert (grid.per_example - expected).abs().max() < 1e-3


def test_8bit_data_must_lie_on_the_grid():
    data_truth = MixtureTruth.example(2, 2, SCHEDULES["cosine"], seed=0)
    model = Wrapper(data_truth, 0.5, 0.5, levels=256)
    with pytest.raises(DataError, match="grid k/255"):
        ode_nll(model, torch.full((3, 2), 0.5, dtype=F64))
    with pytest.raises(DataError, match="grid k/255"):
        ode_nll(model, torch.full((3, 2), 2.0, dtype=F64))


# -- a Diffusion model -------------------------------------------------------------------------------------


def _zero_model(data_shape, levels=0, shift=0.0, scale=1.0):
    config = DiffusionConfig(data_shape=data_shape, schedule=ScheduleConfig("linear", 1000),
                             denoiser=MLPDenoiserConfig(hidden=16, depth=1, time_dim=8), levels=levels, shift=shift,
                             scale=scale)
    return Diffusion(config)  # the output layer starts at zero: ε̂ ≡ 0


def test_a_zero_network_has_a_closed_form():
    # ε̂ ≡ 0: dx/dσ̃ = −σ α x, so x_T = α_T x and Δ = D log α_T: p_0 = N(0, I/α_T²) in the network space
    model = _zero_model((3,), shift=0.2, scale=2.0).train()
    data = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    est = ode_nll(model, data, batch_size=4)
    assert model.training  # restored after evaluation
    alpha_T = float(model.schedule.alpha_sigma(torch.tensor(1000.0))[0])
    x = (data.double() - 0.2) / 2.0
    expected = -(-0.5 * (alpha_T * x).pow(2).sum(-1) - 1.5 * math.log(2 * math.pi) + 3 * math.log(alpha_T)
                 - 3 * math.log(2.0))
    assert torch.allclose(est.per_example, expected, atol=1e-4)
    assert est.nfe > 0


def test_a_diffusion_model_on_8bit_data_with_hutchinson():
    model = _zero_model((80,), levels=256, shift=0.5, scale=0.5)
    g = torch.Generator().manual_seed(0)
    torch.nn.init.normal_(model.net.out[-1].weight, std=0.1, generator=g)
    data = torch.randint(0, 256, (5, 80), generator=g) / 255
    a = ode_nll(model, data, generator=1, rtol=1e-3, atol=1e-3)
    b = ode_nll(model, data, generator=1, rtol=1e-3, atol=1e-3)
    c = ode_nll(model, data, generator=2, rtol=1e-3, atol=1e-3)
    assert a.unit == "bits/dim" and a.per_example.shape == (5,) and bool(torch.isfinite(a.per_example).all())
    assert torch.equal(a.per_example, b.per_example) and not torch.equal(a.per_example, c.per_example)


def test_bad_options_are_one_line_errors():
    truth = MixtureTruth.example(2, 2, SCHEDULES["linear"], seed=0)
    x = truth.sample(3, 0)
    with pytest.raises(KakusanError, match="divergence"):
        ode_log_likelihood(truth, truth.schedule, x, divergence="trace")
    with pytest.raises(KakusanError, match="t_min < t_max"):
        ode_log_likelihood(truth, truth.schedule, x, t_min=1000.0)
    with pytest.raises(KakusanError, match="rtol"):
        ode_log_likelihood(truth, truth.schedule, x, rtol=0.0)

    def frozen(x, t, cond=None):
        with torch.no_grad():
            return truth(x, t)

    with pytest.raises(KakusanError, match="no_grad"):
        ode_log_likelihood(frozen, truth.schedule, x)
    with pytest.raises(KakusanError, match="more than 3 steps"):
        ode_log_likelihood(truth, truth.schedule, x, rtol=1e-8, atol=1e-8, max_steps=3)


# -- a trained network ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_trained_mlp_reaches_the_mixture_entropy():
    """Recipe: linear schedule (T = 1000), v-prediction, L_simple; MLP 128 × 2; Adam 2e-3 with cosine decay,
    batches of 512 for 1200 steps, no EMA. The PF-ODE NLL on held-out points comes within 0.05 nats of the exact
    −log q (about 0.005–0.01 nats away in trials)."""
    from kakusan.diffusion.objectives import DiffusionLoss
    from kakusan.train import TrainConfig, fit

    schedule = ScheduleConfig("linear", 1000)
    truth = MixtureTruth.example(2, 3, Schedule(schedule), seed=0)
    data = truth.sample(100_000, 1).float()
    config = DiffusionConfig(data_shape=(2,), schedule=schedule, target="v",
                             denoiser=MLPDenoiserConfig(hidden=128, depth=2, time_dim=32))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Diffusion(config)
    steps = 1200
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    decay = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    fit(model, DiffusionLoss("simple"), data, optimizer, TrainConfig(steps=steps, batch_size=512, progress=False,
                                                                       log_every=steps), scheduler=decay)
    held = truth.sample(300, 99)
    est = ode_nll(model, held.float(), rtol=1e-4, atol=1e-4, batch_size=300)
    kl = est.per_example - (-truth.log_prob(held))  # paired: the model's excess NLL on the same points
    kl_se = float(kl.std()) / math.sqrt(len(kl))
    entropy = truth.entropy_mc()
    print(f"\nPF-ODE NLL {est} (NFE {est.nfe}), entropy {entropy:.4f}, "
          f"paired excess {float(kl.mean()):.4f} ± {kl_se:.4f}")
    assert -0.03 < float(kl.mean()) < 0.05
    assert abs(est.value - entropy) < 0.05 + 3 * est.stderr
