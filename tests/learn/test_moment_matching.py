"""Learning Boltzmann machines by moment matching with exact statistics."""

import itertools
import math

import pytest
import torch

from kakusan.boltzmann import exact
from kakusan.boltzmann.hidden import HiddenBoltzmannMachine
from kakusan.boltzmann.ising import IsingModel
from kakusan.learn import fit_boltzmann
from kakusan.learn.base import MomentMatching, Stats, lipschitz_bound, mean_energy
from kakusan.learn.exact import ExactEstimator
from kakusan.optim.surrogate import SurrogateGD
from kakusan.train import TrainConfig, fit


def _random_model(n, gen, scale=0.5):
    J = scale * torch.randn(n, n, generator=gen, dtype=torch.float64)
    J = (J + J.T).fill_diagonal_(0.0)
    return IsingModel.from_params(J, 0.3 * torch.randn(n, generator=gen, dtype=torch.float64))


def _entropy(data):
    _, counts = torch.unique(data, dim=0, return_counts=True)
    p = counts.double() / len(data)
    return float(-(p * p.log()).sum())


def _exact_data_stats(model):
    s = exact.exact_stats(model)
    return Stats(s.mean, s.corr)


def test_surrogate_loss_gradient_equals_autograd_of_the_exact_nll(gen):
    truth, model = _random_model(5, gen), _random_model(5, gen)
    data = truth.sample(97, gen)
    out = MomentMatching(ExactEstimator())(model, data, gen)
    out.loss.backward()
    g_mm = (model.J.grad.clone(), model.h.grad.clone())
    model.zero_grad()
    (-model.log_prob(data).mean()).backward()
    torch.testing.assert_close(model.J.grad, g_mm[0])
    torch.testing.assert_close(model.h.grad, g_mm[1])
    assert out.value == pytest.approx(float(-model.log_prob(data).mean().detach()), rel=1e-12)


@pytest.mark.parametrize("fused", [False, True])
def test_the_cached_log_z_follows_every_update_even_a_fused_optimizers(gen, fused):
    """ExactEstimator reuses log Z while the parameters are unchanged; a fused Adam writes them without bumping
    torch's version counters, so the cache compares values: after a step log Z is the new parameters' own."""
    model = _random_model(5, gen)
    estimator = ExactEstimator()
    estimator.model_stats(model)
    before = estimator.log_z(model)
    assert before == pytest.approx(float(exact.log_z(model)), rel=1e-12)
    opt = torch.optim.Adam(model.parameters(), lr=0.1, fused=fused)
    (-model.log_prob(_random_model(5, gen).sample(50, gen)).mean()).backward()
    opt.step()
    after = estimator.log_z(model)
    assert after == pytest.approx(float(exact.log_z(model)), rel=1e-12) and abs(after - before) > 1e-3


def test_exact_learning_recovers_a_known_model_from_its_own_moments(gen):
    truth = _random_model(7, gen)
    model = IsingModel(7)
    data = _exact_data_stats(truth)
    opt = SurrogateGD(model.parameters(), lipschitz=1.0, backtracking=True)
    fit(model, MomentMatching(ExactEstimator()), data, opt, TrainConfig(steps=400, progress=False))
    torch.testing.assert_close(model.couplings(), truth.couplings(), atol=1e-4, rtol=0)
    torch.testing.assert_close(model.h, truth.h, atol=1e-4, rtol=0)


@pytest.mark.parametrize("n", [3, 5])
def test_the_one_over_L_step_never_increases_the_exact_kl(n, gen):
    truth = _random_model(n, gen, scale=0.8)
    data = truth.sample(211, gen)
    model = IsingModel(n)
    opt = SurrogateGD(model.parameters(), lipschitz=lipschitz_bound(model))
    res = fit(model, MomentMatching(ExactEstimator()), data, opt, TrainConfig(steps=150, progress=False))
    values = [r["value"] for r in res.history]  # mean NLL = KL(p0||q) + H(p0): same steps as the exact KL
    assert all(b <= a + 1e-12 for a, b in zip(values, values[1:]))
    assert values[-1] < values[0] - 0.05
    kl = exact.kl_divergence(model, data)
    assert kl == pytest.approx(exact.mean_log_likelihood(model, data) * -1 - _entropy(data), abs=1e-9)


def test_l2_shrinks_and_l1_zeroes_weak_couplings(gen):
    truth = _random_model(5, gen)
    data = _exact_data_stats(truth)
    norms = []
    for l2 in (0.0, 0.1, 1.0):
        model = IsingModel(5)
        fit(model, MomentMatching(ExactEstimator(), l2=l2), data,
            SurrogateGD(model.parameters(), lipschitz=1.0, backtracking=True), TrainConfig(steps=300, progress=False))
        norms.append(float(model.couplings().detach().norm()))
    assert norms[0] > norms[1] > norms[2]

    lam = 0.05
    model, _ = fit_boltzmann(data, optimizer="backtracking", l1=lam, steps=600, progress=False)
    # KKT conditions of min NLL + λ Σ_{k<l} |J_kl|, with the pair gradient −(C_data − C_model):
    # |gradient| ≤ λ at zero couplings, gradient = −λ sign(J_kl) elsewhere
    grad = -(data.corr - ExactEstimator().model_stats(model).corr)
    S = model.couplings().detach()
    off = ~torch.eye(5, dtype=torch.bool)
    zero = (S == 0) & off
    assert zero.any(), "with λ = 0.05 some weak couplings should be exactly zero"
    assert bool((grad[zero].abs() <= lam + 1e-6).all())
    nz = (S != 0) & off
    torch.testing.assert_close(grad[nz], -lam * torch.sign(S[nz]), atol=1e-5, rtol=0)


# ------------------------------------------------------------------ hidden units


def _brute_marginal(model: HiddenBoltzmannMachine, v: torch.Tensor) -> torch.Tensor:
    """log q(v) by a naive loop over every joint state."""
    nv, nh = model.n_visible, model.config["n_hidden"]
    S, b = model.couplings().detach(), model.h.detach()
    energy = lambda x: float(-0.5 * x @ S @ x - b @ x)  # noqa: E731
    states = [torch.tensor(s, dtype=torch.float64) for s in itertools.product((-1.0, 1.0), repeat=nv + nh)]
    log_z = math.log(sum(math.exp(-energy(x)) for x in states))
    out = []
    for row in v:
        hs = [torch.cat([row, torch.tensor(h, dtype=torch.float64)]) for h in itertools.product((-1.0, 1.0), repeat=nh)]
        out.append(math.log(sum(math.exp(-energy(x)) for x in hs)) - log_z)
    return torch.tensor(out, dtype=torch.float64)


def _random_hidden(nv, nh, gen):
    model = HiddenBoltzmannMachine(nv, nh)
    J = 0.4 * torch.randn(nv + nh, nv + nh, generator=gen, dtype=torch.float64)
    model.joint.set_params(J + J.T, 0.3 * torch.randn(nv + nh, generator=gen, dtype=torch.float64))
    return model


def test_hidden_marginal_matches_a_naive_loop(gen):
    model = _random_hidden(5, 3, gen)
    v = torch.tensor(list(itertools.product((-1.0, 1.0), repeat=5)), dtype=torch.float64)
    torch.testing.assert_close(model.log_prob(v).detach(), _brute_marginal(model, v))
    assert float(torch.logsumexp(model.log_prob(v).detach(), 0)) == pytest.approx(0.0, abs=1e-12)


def test_clamped_minus_free_statistics_is_the_gradient_of_the_marginal_likelihood(gen):
    model = _random_hidden(4, 3, gen)
    v = _random_hidden(4, 3, gen).sample(53, gen)
    out = MomentMatching(ExactEstimator())(model, v, gen)
    out.loss.backward()
    g = (model.joint.J.grad.clone(), model.joint.h.grad.clone())
    model.zero_grad()
    (-model.log_prob(v).mean()).backward()
    torch.testing.assert_close(model.joint.J.grad, g[0])
    torch.testing.assert_close(model.joint.h.grad, g[1])
    assert out.value == pytest.approx(float(-model.log_prob(v).mean().detach()), rel=1e-12)


def test_hidden_learning_raises_the_exact_log_likelihood(gen):
    teacher = _random_hidden(5, 2, gen)
    with torch.no_grad():
        teacher.joint.J.mul_(3.0)
    v = teacher.sample(307, gen)
    model = _random_hidden(5, 2, gen)  # random start: the likelihood is not convex in θ
    opt = SurrogateGD(model.parameters(), lipschitz=lipschitz_bound(model))
    res = fit(model, MomentMatching(ExactEstimator()), v, opt, TrainConfig(steps=200, progress=False))
    nll = [r["nll"] for r in res.history]
    assert all(b <= a + 1e-12 for a, b in zip(nll, nll[1:]))  # η = 1/L is monotone with hidden units too
    assert nll[-1] < nll[0] - 0.1
    # and the mean energy of clamped statistics is linear: a sanity check of the surrogate
    s = model.clamped_stats(v)
    torch.testing.assert_close(mean_energy(model, s), mean_energy(model, Stats(s.mean, s.corr)))
