"""IsingModel: energy, local field and conditionals against autograd and flips; exact log q; gradients."""

import math

import pytest
import torch

from kakusan.boltzmann import IsingModel, exact
from kakusan.errors import KakusanError
from kakusan.checkpoint import load_model, save_model

F64 = torch.float64


def model(n: int = 7, seed: int = 0) -> IsingModel:
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, n, generator=g, dtype=F64)
    return IsingModel.from_params((A + A.T) / 2 - torch.diag(torch.diagonal(A)), torch.randn(n, generator=g, dtype=F64))


def spins(b: int, n: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 2.0 * torch.randint(0, 2, (b, n), generator=g).to(F64) - 1.0


def test_energy_by_definition():
    m = model(5)
    x = spins(11, 5)
    J, h = m.J.detach(), m.h.detach()
    want = torch.tensor([-sum(J[k, l] * xi[k] * xi[l] for k in range(5) for l in range(k + 1, 5)) - h @ xi for xi in x])
    torch.testing.assert_close(m.energy(x).detach(), want)
    assert m.energy(x).shape == (11,)


def test_local_field_is_minus_energy_gradient_and_flip_difference():
    m = model(7)
    x = spins(13, 7).requires_grad_(True)
    (grad,) = torch.autograd.grad(m.energy(x).sum(), x)
    field = m.local_field(x).detach()
    torch.testing.assert_close(field, -grad)
    for k in (0, 3, 6):
        flipped = x.detach().clone()
        flipped[:, k] *= -1
        dE = (m.energy(flipped) - m.energy(x)).detach()  # E(x with x_k flipped) − E(x) = 2 x_k (Jx + h)_k
        torch.testing.assert_close(dE, 2 * x.detach()[:, k] * field[:, k])
        torch.testing.assert_close(m.local_field(x, k).detach(), field[:, k])


@pytest.mark.parametrize("beta", [1.0, 0.35])
def test_conditional_up_is_the_ratio_of_boltzmann_weights(beta):
    m = model(7)
    x = spins(9, 7)
    cond = m.conditional_up(x, beta=beta).detach()
    for k in range(7):
        up, dn = x.clone(), x.clone()
        up[:, k], dn[:, k] = 1.0, -1.0
        eu, ed = m.energy(up).detach(), m.energy(dn).detach()
        want = 1 / (1 + torch.exp(-beta * (ed - eu)))
        torch.testing.assert_close(cond[:, k], want)
        torch.testing.assert_close(m.conditional_up(x, k, beta=beta).detach(), want)


def test_log_prob_is_normalised_and_exact():
    m = model(6)
    X = exact.all_states(6)
    lp = m.log_prob(X).detach()
    assert float(torch.logsumexp(lp, 0)) == pytest.approx(0.0, abs=1e-12)
    torch.testing.assert_close(lp, exact.log_prob_all(m))
    lp_b = m.log_prob(X, beta=0.5).detach()
    assert float(torch.logsumexp(lp_b, 0)) == pytest.approx(0.0, abs=1e-12)
    assert float(m.log_z(beta=0.0).detach()) == pytest.approx(6 * math.log(2))


def test_nll_gradient_is_data_minus_model_moments():
    """∂(−⟨log q⟩_data)/∂J_kl = −½(⟨x_k x_l⟩_data − ⟨x_k x_l⟩_model) per entry (twice that per pair); h likewise."""
    m = model(7)
    data = spins(50, 7, seed=3)
    loss = -m.log_prob(data).mean()
    loss.backward()
    st = exact.exact_stats(m)
    c_data, m_data = data.T @ data / len(data), data.mean(0)
    want = -0.5 * (c_data - st.corr)
    want.fill_diagonal_(0.0)
    torch.testing.assert_close(m.J.grad, want)
    torch.testing.assert_close(m.h.grad, -(m_data - st.mean))
    torch.testing.assert_close(m.J.grad, m.J.grad.T)


def test_pair_gradient_by_finite_differences():
    """Moving the coupling J_kl = J_lk by ε changes the loss by ε · (J.grad[k, l] + J.grad[l, k])."""
    m = model(6)
    data = spins(40, 6, seed=4)
    (-m.log_prob(data, beta=0.7).mean()).backward()

    def loss(k, l, eps):
        J = m.J.detach().clone()
        J[k, l] += eps
        J[l, k] += eps
        with torch.no_grad():
            return float(-IsingModel.from_params(J, m.h.detach()).log_prob(data, beta=0.7).mean())

    eps = 1e-6
    for k, l in ((0, 1), (2, 5), (4, 3)):
        fd = (loss(k, l, eps) - loss(k, l, -eps)) / (2 * eps)
        assert float(m.J.grad[k, l] + m.J.grad[l, k]) == pytest.approx(fd, rel=1e-6, abs=1e-9)


def test_symmetric_parameter_stays_symmetric_under_adam():
    m = model(5)
    opt = torch.optim.Adam(m.parameters(), lr=0.05)
    data = spins(30, 5, seed=5)
    for _ in range(3):
        opt.zero_grad()
        (-m.log_prob(data).mean()).backward()
        opt.step()
    torch.testing.assert_close(m.J.detach(), m.J.detach().T, rtol=0, atol=0)
    assert float(torch.diagonal(m.J.detach()).abs().max()) == 0.0


def test_sample_is_seeded_and_exact_shape():
    m = model(5)
    a, b = m.sample(300, generator=7), m.sample(300, generator=torch.Generator().manual_seed(7))
    assert a.shape == (300, 5) and a.dtype == F64 and torch.equal(a, b)


def test_checkpoint_round_trip(tmp_path):
    m = model(5)
    save_model(tmp_path, m)
    back = load_model(tmp_path)
    assert isinstance(back, IsingModel) and back.config == {"n_visible": 5}
    torch.testing.assert_close(back.J, m.J)
    torch.testing.assert_close(back.h, m.h)


def test_constructor_and_from_params_validate():
    with pytest.raises(KakusanError, match="positive integer"):
        IsingModel(0)
    with pytest.raises(KakusanError, match="not symmetric"):
        IsingModel.from_params(torch.tensor([[0.0, 1.0], [2.0, 0.0]]), torch.zeros(2))
    m = IsingModel(3)
    assert m.n_visible == 3 and float(m.log_z().detach()) == pytest.approx(3 * math.log(2))
