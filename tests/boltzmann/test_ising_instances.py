"""Standard test models: structure, scaling, seeding."""

import pytest
import torch

from kakusan.boltzmann import exact, instances
from kakusan.errors import KakusanError


def test_sk_couplings_have_variance_beta_squared_over_n():
    n, beta = 60, 1.5
    m = instances.sherrington_kirkpatrick(n, beta=beta, seed=0)
    J = m.J.detach()
    k, l = torch.triu_indices(n, n, 1)
    var = float(J[k, l].var())
    assert var == pytest.approx(beta**2 / n, rel=0.1)
    assert torch.equal(J, J.T) and float(torch.diagonal(J).abs().max()) == 0.0
    assert float(m.h.detach().abs().max()) == 0.0


def test_seed_fixes_the_instance():
    a = instances.sherrington_kirkpatrick(9, field_std=1.0, seed=3)
    b = instances.sherrington_kirkpatrick(9, field_std=1.0, seed=torch.Generator().manual_seed(3))
    c = instances.sherrington_kirkpatrick(9, field_std=1.0, seed=4)
    assert torch.equal(a.J, b.J) and torch.equal(a.h, b.h) and not torch.equal(a.J, c.J)


@pytest.mark.parametrize("periodic, degrees", [(True, {4}), (False, {2, 3, 4})])
def test_edwards_anderson_lattice(periodic, degrees):
    m = instances.edwards_anderson_2d(5, beta=0.5, periodic=periodic, seed=1)
    J = m.J.detach()
    assert set((J != 0).sum(1).tolist()) == degrees
    assert set(J[J != 0].abs().unique().tolist()) == {0.5}
    assert int((J != 0).sum()) // 2 == (50 if periodic else 40)
    assert J[0, 1] != 0 and J[0, 5] != 0 and (J[0, 4] != 0) == periodic and (J[0, 20] != 0) == periodic


def test_edwards_anderson_gaussian_with_fields_and_errors():
    m = instances.edwards_anderson_2d(4, beta=2.0, couplings="gaussian", field=0.1, field_std=0.3, seed=2)
    assert len(m.J.detach()[m.J.detach() != 0].abs().unique()) > 10
    assert float(m.h.detach().std()) > 0
    with pytest.raises(KakusanError, match="periodic=False"):
        instances.edwards_anderson_2d(2)
    with pytest.raises(KakusanError, match="'pm'"):
        instances.edwards_anderson_2d(3, couplings="uniform")


def test_ferromagnets_order_at_low_temperature():
    cw = exact.exact_stats(instances.curie_weiss(12, beta=3.0))
    assert float(cw.corr[0, 1]) > 0.9 and float(cw.mean.abs().max()) < 1e-12
    cold = exact.exact_stats(instances.ferromagnet_2d(4, beta=1.0, field=0.3))
    hot = exact.exact_stats(instances.ferromagnet_2d(4, beta=0.1, field=0.3))
    assert float(cold.mean.min()) > 0.9 > float(hot.mean.max())
    assert set(instances.INSTANCES) == {"sk", "ea2d", "curie_weiss", "ferro2d"}
