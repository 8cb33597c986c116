"""The .npz model file: J (N, N) symmetric with zero diagonal, h (N,); clear errors; atomic writes."""

import numpy as np
import pytest
import torch

from kakusan.boltzmann import IsingModel, load_ising_npz, save_ising_npz
from kakusan.errors import KakusanError


def good(n: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    A = rng.normal(size=(n, n))
    J = (A + A.T) / 2
    np.fill_diagonal(J, 0.0)
    return J, rng.normal(size=n)


def test_round_trip_is_exact_and_atomic(tmp_path):
    J, h = good()
    m = IsingModel.from_params(J, h)
    path = save_ising_npz(tmp_path / "model.npz", m)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]  # no temporary left behind
    back = load_ising_npz(path)
    assert torch.equal(back.J, m.J) and torch.equal(back.h, m.h)
    with np.load(path) as f:
        assert f["J"].shape == (5, 5) and f["h"].shape == (5,) and f["J"].dtype == np.float64


def test_loads_integer_arrays(tmp_path):
    np.savez(tmp_path / "m.npz", J=np.array([[0, 1], [1, 0]]), h=np.array([0, -1]))
    m = load_ising_npz(tmp_path / "m.npz")
    assert m.J.dtype == torch.float64 and float(m.J.detach()[0, 1]) == 1.0


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda J, h: (J + np.triu(np.ones_like(J), 1) * 0.1, h), r"not symmetric \(J\[\d,\d\] = .* but J\[\d,\d\]"),
        (lambda J, h: (J + np.eye(len(J)) * 0.5, h), r"nonzero diagonal \(J\[0,0\].*fill_diagonal"),
        (lambda J, h: (J[:, :4], h), r"square \(N, N\)"),
        (lambda J, h: (J, h[:4]), r"h must have shape \(5,\)"),
        (lambda J, h: (np.where(np.eye(5, k=1) + np.eye(5, k=-1) > 0, np.nan, J), h), "J contains NaN"),
        (lambda J, h: (J, np.full(5, np.inf)), "h contains NaN or infinite"),
        (lambda J, h: (J.astype(complex), h), "real numbers"),
    ],
)
def test_invalid_files_are_refused_clearly(tmp_path, change, message):
    J, h = change(*good())
    np.savez(tmp_path / "bad.npz", J=J, h=h)
    with pytest.raises(KakusanError, match=message):
        load_ising_npz(tmp_path / "bad.npz")


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(KakusanError, match="no such file"):
        load_ising_npz(tmp_path / "absent.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(KakusanError, match="cannot read .* numpy.savez"):
        load_ising_npz(tmp_path / "junk.npz")
    np.savez(tmp_path / "noh.npz", J=np.zeros((2, 2)))
    with pytest.raises(KakusanError, match="lacks array\\(s\\) h"):
        load_ising_npz(tmp_path / "noh.npz")
    np.savez(tmp_path / "obj.npz", J=np.array([None, 1], dtype=object), h=np.zeros(2))
    with pytest.raises(KakusanError, match="cannot read"):
        load_ising_npz(tmp_path / "obj.npz")
