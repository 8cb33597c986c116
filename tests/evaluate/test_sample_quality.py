"""Fréchet distance, k-NN precision/recall and class accuracy against closed forms and brute force."""

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from kakusan.errors import KakusanError
from kakusan.evaluate.sample_quality import (
    class_accuracy,
    fd_with_error,
    frechet_distance,
    frechet_distance_features,
    gaussian_stats,
    knn_radii,
    precision_recall,
)


def _spd(rng, d, scale=1.0):
    a = rng.standard_normal((d, d))
    return scale * (a @ a.T / d + 0.1 * np.eye(d))


def _scipy_fd(mu1, c1, mu2, c2):
    """The usual FID code: tr √(C₁C₂) through scipy.linalg.sqrtm (complex Schur), real part."""
    covmean = scipy.linalg.sqrtm(c1 @ c2)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(c1) + np.trace(c2) - 2 * np.trace(covmean).real)


# ---------------------------------------------------------------- Fréchet distance


def test_one_dimension_closed_form():
    for mu1, s1, mu2, s2 in [(0.0, 1.0, 0.0, 1.0), (1.5, 2.0, -0.5, 0.5), (3.0, 0.1, 3.0, 4.0)]:
        fd = frechet_distance([mu1], [[s1**2]], [mu2], [[s2**2]])
        assert fd == pytest.approx((mu1 - mu2) ** 2 + (s1 - s2) ** 2, abs=1e-12)
    assert frechet_distance(1.0, 4.0, 0.0, 1.0) == pytest.approx(2.0)  # scalars: (1 − 0)² + (2 − 1)²


def test_commuting_covariances_closed_form():
    rng = np.random.default_rng(0)
    d = 12
    a, b = rng.uniform(0.0, 3.0, d), rng.uniform(0.0, 3.0, d)
    a[:3] = 0.0  # singular covariances too
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    exact = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(exact, rel=1e-10)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))  # same eigenvectors, not diagonal
    assert frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T) == pytest.approx(exact, rel=1e-8)


def test_symmetric_zero_for_identical_and_agrees_with_scipy_sqrtm():
    rng = np.random.default_rng(1)
    d = 20
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    c1, c2 = _spd(rng, d), _spd(rng, d, 2.0)
    fd12, fd21 = frechet_distance(mu1, c1, mu2, c2), frechet_distance(mu2, c2, mu1, c1)
    assert fd12 == pytest.approx(fd21, rel=1e-10)
    assert fd12 == pytest.approx(_scipy_fd(mu1, c1, mu2, c2), rel=1e-8)
    assert frechet_distance(mu1, c1, mu1, c1) == pytest.approx(0.0, abs=1e-10 * np.trace(c1))
    assert frechet_distance(mu1, c1, mu2, c2) > frechet_distance(mu1, c1, mu1, c2)  # moving the mean costs


def test_features_version_uses_sample_mean_and_unbiased_covariance():
    rng = np.random.default_rng(2)
    f1, f2 = rng.standard_normal((300, 5)), rng.standard_normal((200, 5)) * 1.5 + 0.3
    mu1, c1 = gaussian_stats(f1)
    np.testing.assert_allclose(c1, np.cov(f1, rowvar=False), rtol=1e-12)
    expected = _scipy_fd(f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0), np.cov(f2, rowvar=False))
    assert frechet_distance_features(f1, f2) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance_features(torch.from_numpy(f1).float(), f2) == pytest.approx(expected, rel=1e-5)
    assert frechet_distance_features(f1, f1) == pytest.approx(0.0, abs=1e-9)
    # fewer examples than features: singular covariances, still finite and non-negative
    assert 0.0 < frechet_distance_features(f1[:4], f2[:4]) < math.inf


def test_errors_are_one_line():
    with pytest.raises(KakusanError, match="different widths"):
        frechet_distance_features(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(KakusanError, match="non-finite"):
        frechet_distance_features(np.full((5, 3), np.nan), np.zeros((5, 3)))
    with pytest.raises(KakusanError, match="one d"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))


def test_plug_in_fd_is_biased_upward_by_order_one_over_n():
    """Two samples of one Gaussian: FD = 0, but E[FD̂] ≈ c/n > 0 — quadrupling n quarters it."""
    rng = np.random.default_rng(3)
    d = 4

    def mean_fd(n):
        return np.mean([frechet_distance_features(rng.standard_normal((n, d)), rng.standard_normal((n, d)))
                        for _ in range(40)])

    small, large = mean_fd(100), mean_fd(400)
    assert small > 0 and 3.0 < small / large < 5.3
    # the mean term alone: E‖μ̂₁ − μ̂₂‖² = 2 tr C / n
    assert small > 2 * d / 100


def _spread_and_errors(draw, ref, n_fresh: int, seeds: int):
    """sd of FD̂ over n_fresh fresh sample sets against the fixed ``ref``, and fd_with_error's s.e. of `seeds` more."""
    spread = np.std([frechet_distance_features(draw(), ref) for _ in range(n_fresh)], ddof=1)
    return spread, [fd_with_error(draw(), ref, n_boot=40, seed=s).stderr for s in range(seeds)]


def test_stderr_matches_the_spread_over_fresh_samples():
    """The s.e. of one sample set ≈ the sd of FD̂ over independent sample sets against the same reference."""
    rng = np.random.default_rng(4)
    n, d = 400, 3
    scale = np.array([1.0, 2.0, 0.5])
    ref = rng.standard_normal((2000, d))
    draw = lambda: rng.standard_normal((n, d)) * scale + 0.4  # noqa: E731
    spread, ses = _spread_and_errors(draw, ref, 150, 8)
    assert 0.75 < np.median(ses) / spread < 1.33
    f1 = draw()
    est = fd_with_error(f1, ref, n_boot=10, seed=0)
    assert est.value == frechet_distance_features(f1, ref)  # the plug-in value, not the resamples' mean
    assert est.n == n and est.unit == "squared feature units" and "Gaussian resamples" in est.method
    assert fd_with_error(f1, ref, n_boot=10, seed=0) == est  # same seed, same error
    with pytest.raises(KakusanError, match="n_boot"):
        fd_with_error(draw(), ref, n_boot=1)


def test_stderr_near_an_exact_floor_is_conservative_and_beats_the_row_bootstrap():
    """Many features, few samples, samples from the reference's own law (an exact floor): FD̂'s spread is then its
    O(1/n) part alone, and any plug-in resampling adds a first-order part that the true law lacks (the gradient
    of FD is zero at C₁ = C₂ but not at Ĉ₁), about √2 on the s.e. The Gaussian resamples stay within 1.6× of
    the true spread; resampling rows with replacement (the usual bootstrap) repeats rows and is wider still.
    On real features (benchmarks/results_calibration.md) the Gaussian resamples were calibrated from FD̂ ≈ 12
    to 167, where the row bootstrap was 1.7× too wide near the floor."""
    rng = np.random.default_rng(5)
    n, d = 300, 64
    scale = 1.0 / np.arange(1, d + 1) ** 0.5  # a decaying spectrum, as features have
    draw = lambda: rng.standard_normal((n, d)) * scale  # noqa: E731
    ref = rng.standard_normal((3000, d)) * scale
    spread, ses = _spread_and_errors(draw, ref, 200, 10)
    assert 1.0 < np.median(ses) / spread < 1.6, (np.median(ses), spread)
    rows = []
    for _ in range(10):
        f1 = draw()
        rows.append(np.std([frechet_distance_features(f1[rng.integers(0, n, n)], ref) for _ in range(40)], ddof=1))
    assert np.median(rows) > 1.1 * np.median(ses), (np.median(rows), np.median(ses), spread)


# ---------------------------------------------------------------- precision and recall


def _brute_force_pr(real, fake, k):
    def radii(x):
        d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
        return np.sort(d, axis=1)[:, k]  # column 0 is the point itself

    def inside(points, centers, r):
        d = np.sqrt(((points[:, None, :] - centers[None, :, :]) ** 2).sum(-1))
        return (d <= r[None, :]).any(1)

    return inside(fake, real, radii(real)).mean(), inside(real, fake, radii(fake)).mean()


def test_identical_sets_give_one_and_far_sets_zero():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((200, 8))
    pr = precision_recall(x, x.copy())
    assert (pr.precision, pr.recall, pr.k, pr.n_real, pr.n_fake) == (1.0, 1.0, 3, 200, 200)
    far = precision_recall(x, x + 100.0)
    assert (far.precision, far.recall) == (0.0, 0.0)


def test_mode_dropping_halves_recall_keeps_precision():
    """Real: 10 well-separated clusters; generated: 5 of them → precision ≈ 1, recall ≈ ½ — and, in any
    dimension, the precision of a model with all ten modes and half its recall."""
    rng = np.random.default_rng(6)
    for d, low in ((2, 0.93), (16, 0.7)):  # finite k-NN balls cover less of a 16-d cluster
        centers = rng.standard_normal((10, d)) * 50
        real = np.concatenate([c + rng.standard_normal((100, d)) for c in centers])
        dropped = precision_recall(real, np.concatenate([c + rng.standard_normal((200, d)) for c in centers[:5]]))
        full = precision_recall(real, np.concatenate([c + rng.standard_normal((100, d)) for c in centers]))
        assert dropped.precision > low and abs(dropped.precision - full.precision) < 0.05
        assert abs(dropped.recall / full.recall - 0.5) < 0.05
        if d == 2:
            assert abs(dropped.recall - 0.5) < 0.04


def test_agrees_with_brute_force_including_chunking():
    rng = np.random.default_rng(7)
    real = rng.standard_normal((150, 6))
    fake = rng.standard_normal((120, 6)) * 1.3 + 0.3
    for k in (1, 3, 5):
        expected = _brute_force_pr(real, fake, k)
        for budget in (2**22, 1000, 7):  # one chunk; several; one row at a time
            pr = precision_recall(real, fake, k=k, budget=budget)
            assert (pr.precision, pr.recall) == pytest.approx(expected, abs=1e-12)
    assert 0.0 < expected[0] < 1.0 and 0.0 < expected[1] < 1.0  # a case that tests something


def test_knn_radii_exclude_the_point_itself():
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]], dtype=torch.float64)
    assert knn_radii(x, k=1).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert knn_radii(x, k=2).tolist() == [3.0, 2.0, 3.0, 6.0]
    with pytest.raises(KakusanError, match="more than 4"):
        knn_radii(x, k=4)


# ---------------------------------------------------------------- class accuracy


def test_class_accuracy_from_logits_and_from_a_classifier():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0], [0.0, 5.0]])
    labels = torch.tensor([0, 1, 1, 1])
    est = class_accuracy(logits, labels=labels)
    assert (est.value, est.n, est.unit) == (0.75, 4, "fraction")
    assert est.stderr == pytest.approx(math.sqrt((5 / 8) * (3 / 8) / 8))  # Agresti–Coull: (3 + 2) / (4 + 4)

    x = torch.linspace(-1, 1, 101)[:, None]
    classifier = lambda t: torch.cat([-t, t], dim=1)  # noqa: E731  class 1 iff x > 0
    y = (x[:, 0] > 0).long()
    y[:10] = 1  # ten wrong
    assert class_accuracy(classifier, x, y, batch_size=7).value == pytest.approx(91 / 101)


def test_class_accuracy_stderr_is_calibrated_near_100_percent():
    """Shares k/n of n = 500 draws with true accuracy p (the harness's `--only accuracy` rows, 400 seeds here):
    the printed ± covers p at ±2 s.e. in ≥ 90 % of seeds and is never 0; the Wald √(a(1−a)/n) it replaced fails
    at p = 0.999 (negative control)."""
    from kakusan.evaluate.sample_quality import binomial_stderr

    g = torch.Generator().manual_seed(0)
    n = 500
    for p in (0.9, 0.98, 0.995, 0.999):
        ks = [int((torch.rand(n, generator=g) < p).sum()) for _ in range(400)]
        se = torch.tensor([binomial_stderr(k, n) for k in ks], dtype=torch.float64)
        z = (torch.tensor(ks, dtype=torch.float64) / n - p) / se
        assert bool((se > 0).all()) and float((z.abs() <= 2).double().mean()) >= 0.9, p
        if p == 0.999:
            a = torch.tensor(ks, dtype=torch.float64) / n
            wald = (a * (1 - a) / n).sqrt()
            covered = ((a - p).abs() <= 2 * wald).double().mean()
            assert float(covered) < 0.6  # about 39 %: most seeds see no error, and a ± of 0
    assert binomial_stderr(500, 500) == pytest.approx(math.sqrt(2 * 502) / 504**1.5)
    with pytest.raises(KakusanError, match="0 ≤ k ≤ n"):
        binomial_stderr(6, 5)


def test_class_accuracy_errors():
    with pytest.raises(KakusanError, match="labels"):
        class_accuracy(torch.zeros(3, 2))
    with pytest.raises(KakusanError, match="not logits and samples"):
        class_accuracy(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3))
    with pytest.raises(KakusanError, match=r"classes 0\.\.1"):
        class_accuracy(torch.zeros(3, 2), labels=torch.tensor([0, 1, 2]))
    with pytest.raises(KakusanError, match="3 labels"):
        class_accuracy(torch.zeros(4, 2), labels=torch.tensor([0, 1, 1]))
