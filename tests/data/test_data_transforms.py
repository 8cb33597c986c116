"""Transforms: exact values, seeded reproducibility, Bernoulli means, and refusal of bad values."""

import pytest
import torch

from kakusan.data import (
    binarise,
    flatten,
    from_spins,
    from_symmetric,
    stochastic_binarise,
    to_spins,
    to_symmetric,
    unflatten,
)
from kakusan.errors import DataError


def test_binarise_threshold_is_strict():
    x = torch.tensor([[0.0, 0.49, 0.5, 0.51, 1.0]])
    assert binarise(x).tolist() == [[0, 0, 0, 1, 1]]
    assert binarise(x, threshold=0.2).tolist() == [[0, 1, 1, 1, 1]]
    assert binarise(x).dtype == torch.float32
    assert binarise(x.double()).dtype == torch.float64
    assert binarise(torch.tensor([0, 3, 200], dtype=torch.uint8), threshold=2).tolist() == [0, 1, 1]


def test_stochastic_binarise_same_seed_same_sample(gen):
    x = torch.rand(7, 5, generator=gen)
    a, b = stochastic_binarise(x, 11), stochastic_binarise(x, 11)
    assert torch.equal(a, b) and not torch.equal(a, stochastic_binarise(x, 12))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(stochastic_binarise(x, g1), stochastic_binarise(x, g2))
    assert set(a.unique().tolist()) <= {0.0, 1.0} and a.shape == x.shape


def test_stochastic_binarise_mean_is_x():
    x = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0])
    n = 20000
    draws = stochastic_binarise(x.expand(n, 5), 0)
    mean = draws.mean(0)
    se = (x * (1 - x) / n).sqrt()
    assert torch.all((mean - x).abs() <= 5 * se + 1e-12)  # 5 standard errors; exact at 0 and 1
    assert mean[0] == 0 and mean[4] == 1


@pytest.mark.parametrize("bad", [[-0.1, 0.5], [0.5, 1.01], [float("nan"), 0.5], [float("inf"), 0.0]])
def test_stochastic_binarise_rejects_values_outside_unit_interval(bad):
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        stochastic_binarise(torch.tensor(bad), 0)


def test_spins_round_trip_exact():
    b = torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    s = to_spins(b)
    assert s.tolist() == [[-1, 1, 1], [1, -1, -1]]
    assert torch.equal(from_spins(s), b)
    assert to_spins(torch.tensor([0, 1])).dtype == torch.float32


def test_spins_reject_other_values():
    with pytest.raises(DataError, match="binarise the data first") as e:
        to_spins(torch.tensor([0.0, 0.5, 1.0]))
    assert "found 0.5" in str(e.value)
    with pytest.raises(DataError, match="found 0"):
        from_spins(torch.tensor([1.0, 0.0, -1.0]))


def test_symmetric_scale_exact():
    x = torch.tensor([0.0, 0.25, 0.5, 1.0])
    y = to_symmetric(x)
    assert y.tolist() == [-1.0, -0.5, 0.0, 1.0]
    assert torch.equal(from_symmetric(y), x)
    assert from_symmetric(torch.tensor([-1.5, 1.5]), clamp=True).tolist() == [0.0, 1.0]
    assert from_symmetric(torch.tensor([-1.5, 1.5])).tolist() == [-0.25, 1.25]
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        to_symmetric(torch.tensor([2.0]))


def test_flatten_and_unflatten():
    x = torch.arange(2 * 3 * 5).reshape(2, 3, 5)
    v = flatten(x)
    assert v.shape == (2, 15) and v[1, 0] == 15
    assert torch.equal(unflatten(v, (3, 5)), x)
    assert flatten(torch.zeros(4)).shape == (4, 1)
    with pytest.raises(DataError):
        unflatten(v, (4, 4))
    with pytest.raises(DataError):
        flatten(torch.tensor(1.0))


def test_inputs_are_not_changed():
    x = torch.tensor([0.0, 1.0])
    to_spins(x), to_symmetric(x), binarise(x), stochastic_binarise(x, 0)
    assert x.tolist() == [0.0, 1.0]
