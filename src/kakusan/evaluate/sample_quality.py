"""Sample-quality metrics on features: Fréchet distance, k-NN precision and recall, class accuracy.

All three compare a set of generated examples with real ones through a feature map φ (here the penultimate
layer of a small classifier trained per data set, :mod:`kakusan.evaluate.metric_net`, standing in for the
Inception network of FID, whose weights cannot be fetched offline). Numbers from different feature maps are
not comparable; nor are Fréchet distances at different sample sizes (see *Bias* below).

Fréchet distance (Heusel et al. 2017)
-------------------------------------
The 2-Wasserstein distance between the Gaussians N(μ₁, C₁) and N(μ₂, C₂) fitted to the two feature sets:

    FD = ‖μ₁ − μ₂‖² + tr(C₁ + C₂ − 2 (C₁^{1/2} C₂ C₁^{1/2})^{1/2}).

The matrix C₁^{1/2} C₂ C₁^{1/2} is symmetric positive semi-definite, so both square roots are taken from
symmetric eigendecompositions (eigenvalues below zero, round-off, clipped to 0) in float64:
tr (C₁^{1/2} C₂ C₁^{1/2})^{1/2} = Σᵢ √λᵢ. This equals tr (C₁ C₂)^{1/2} — the form ``scipy.linalg.sqrtm``
computes through a complex Schur decomposition, with imaginary round-off to discard — but stays real and
works for singular covariances (fewer examples than features). Closed forms: in one dimension
FD = (μ₁ − μ₂)² + (s₁ − s₂)²; for commuting covariances (same eigenvectors, eigenvalues aᵢ, bᵢ)
FD = ‖μ₁ − μ₂‖² + Σᵢ (√aᵢ − √bᵢ)².

*Bias.* The plug-in FD of n₁ and n₂ examples (sample means, covariances with 1/(n−1)) is biased upward: even
for two samples of one distribution E[FD̂] ≈ c₁/n₁ + c₂/n₂ > 0 (the mean term alone contributes
tr C (1/n₁ + 1/n₂)); Chong & Forsyth (2020) show FD̂_n ≈ FD_∞ + c/n. So compare FDs only at equal sample
sizes, against a floor measured the same way (real held-out data at the same n, which
:func:`kakusan.evaluate.metric_net.evaluate_samples` reports). :func:`fd_with_error` attaches a standard
error — the spread of FD̂ over Gaussian resamples of the samples, the reference held fixed — which says how
much FD̂ would move with another draw of as many samples. It is *not* a bias correction, so the resamples'
mean is not reported. (The row-resampling bootstrap was 1.7× too wide near the floor: repeated rows spread
the O(1/n) part more; ``benchmarks/results_calibration.md``.)

Precision and recall (Kynkäänniemi et al. 2019)
-----------------------------------------------
The real manifold is the union of balls B(rᵢ, ρₖ(rᵢ)) around each real feature rᵢ, ρₖ its distance to its
k-th nearest other real feature (k = 3); the generated manifold likewise from the generated features gⱼ.

    precision = (1/n_g) Σⱼ 1[gⱼ ∈ ∪ᵢ B(rᵢ, ρₖ(rᵢ))],      recall = (1/n_r) Σᵢ 1[rᵢ ∈ ∪ⱼ B(gⱼ, ρₖ(gⱼ))].

Precision is the share of samples that look real (quality); recall the share of real data the model covers
(diversity): a model that drops half of the modes has precision ≈ 1 and recall ≈ ½. A real outlier's ball
is wide, so samples far from most data can still land in one: with the MNIST metric net, blurred training
images score precision 0.85 (recall 0.01, FD 540 against a real-data floor of 4); read precision next to
recall and FD. Distances are
computed in float64 with ``torch.cdist``, in chunks of rows, so 10⁴ × 10⁴ pairs need no 800 MB matrix.

Class accuracy
--------------
For class-conditional samples x₁…xₙ drawn for labels y₁…yₙ, the share that a classifier assigns to the
intended class, a = k/n with k = Σ 1[argmax f(xᵢ) = yᵢ], with the Agresti–Coull standard error
√(ã(1 − ã)/(n + 4)), ã = (k + 2)/(n + 4). The Wald error √(a(1 − a)/n) is 0 when every sample is right and
far too small near 100 %: at a true 99.9 % and n = 500 its ±2 s.e. covered 39 % of seeds, against 100 % for
Agresti–Coull (``benchmarks/bench_calibration.py --only accuracy``); elsewhere the two agree.

API
---
- :func:`frechet_distance` (μ₁, C₁, μ₂, C₂) → float;  :func:`gaussian_stats` features → (μ, C)
- :func:`frechet_distance_features` (f₁, f₂) → float;  :func:`fd_with_error` → :class:`Estimate` (s.e. from Gaussian resamples)
- :func:`knn_radii`, :func:`manifold_coverage`, :func:`precision_recall` → :class:`PrecisionRecall`
- :func:`class_accuracy` (logits, or a classifier and samples; labels) → :class:`Estimate`;
  :func:`binomial_stderr` (k, n) → its Agresti–Coull s.e.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from kakusan.errors import KakusanError, check_positive_int
from kakusan.evaluate.estimate import Estimate
from kakusan.runtime import make_generator

Tensor = torch.Tensor
K_NEAREST = 3  # Kynkäänniemi et al.'s k
DISTANCE_BUDGET = 2**22  # float64 distances held by one chunk of rows (32 MiB)
FD_UNIT = "squared feature units"


# ---------------------------------------------------------------- Fréchet distance


def _as_float64(x, name: str) -> Tensor:
    """``x`` (tensor, array, list or number) as a float64 CPU tensor; a KakusanError if it is not finite numbers."""
    try:
        t = x.detach() if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x, dtype=np.float64))
    except (TypeError, ValueError):
        raise KakusanError(f"{name} must be an array of numbers, got {type(x).__name__}") from None
    t = t.to("cpu", torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise KakusanError(f"{name} has non-finite values (nan or inf): check the features or the samples")
    return t


def _features(f, name: str) -> Tensor:
    a = _as_float64(f, name)
    if a.ndim != 2 or len(a) < 2:
        raise KakusanError(f"{name} must be a (n, d) array of features with n ≥ 2, got shape {tuple(a.shape)}")
    return a


def _psd_sqrt(c: Tensor) -> Tensor:
    """The symmetric square root of a symmetric positive semi-definite matrix (negative round-off clipped)."""
    w, v = torch.linalg.eigh(c)
    return (v * w.clamp_min(0.0).sqrt()) @ v.T


def gaussian_stats(f) -> tuple[Tensor, Tensor]:
    """(μ, C) of features ``f`` (n, d): the mean and the covariance with denominator n − 1, float64 tensors."""
    a = _features(f, "features")
    mu = a.mean(0)
    centered = a - mu
    return mu, centered.T @ centered / (len(a) - 1)


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """‖μ₁ − μ₂‖² + tr(C₁ + C₂ − 2 (C₁^{1/2} C₂ C₁^{1/2})^{1/2}) in float64 (see the module docstring).

    ``mu`` are (d,) vectors, ``cov`` (d, d) symmetric positive semi-definite matrices (a scalar variance in
    one dimension); tensors, arrays or lists. The result is ≥ 0 up to round-off, which is clipped. (The
    eigendecompositions are torch's: NumPy's threaded LAPACK is ~50× slower for d = 128 on busy cores.)
    """
    mu1, mu2 = _as_float64(mu1, "mu1").reshape(-1), _as_float64(mu2, "mu2").reshape(-1)
    cov1, cov2 = torch.atleast_2d(_as_float64(cov1, "cov1")), torch.atleast_2d(_as_float64(cov2, "cov2"))
    d = mu1.shape[0]
    if mu2.shape != (d,) or cov1.shape != (d, d) or cov2.shape != (d, d):
        raise KakusanError(f"Fréchet distance needs means (d,) and covariances (d, d) of one d; got "
                           f"{tuple(mu1.shape)}, {tuple(cov1.shape)}, {tuple(mu2.shape)}, {tuple(cov2.shape)}")
    cov1, cov2 = (cov1 + cov1.T) / 2, (cov2 + cov2.T) / 2
    s1 = _psd_sqrt(cov1)
    middle = s1 @ cov2 @ s1
    cross = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0.0).sqrt().sum()
    diff = mu1 - mu2
    value = float(diff @ diff + torch.trace(cov1) + torch.trace(cov2) - 2.0 * cross)
    return max(value, 0.0)


def frechet_distance_features(f1, f2) -> float:
    """The Fréchet distance between the Gaussians fitted to features ``f1`` (n₁, d) and ``f2`` (n₂, d)."""
    a, b = _features(f1, "f1"), _features(f2, "f2")
    if a.shape[1] != b.shape[1]:
        raise KakusanError(f"the feature sets have different widths {a.shape[1]} and {b.shape[1]}: use one "
                           "feature map for both")
    return frechet_distance(*gaussian_stats(a), *gaussian_stats(b))


def fd_with_error(f1, f2, n_boot: int = 50, seed: int = 0) -> Estimate:
    """The plug-in Fréchet distance of the samples' features ``f1`` to the reference features ``f2``, with a
    standard error.

    The error is the standard deviation of FD̂ over ``n_boot`` parametric resamples: n₁ rows drawn from the
    Gaussian N(μ̂₁, Ĉ₁) fitted to ``f1`` (generator from ``seed``), against ``f2`` held fixed — how much FD̂
    would move with another draw of n₁ samples scored against the same reference. It is not a bias correction:
    FD̂ is biased upward by O(1/n₁) (module docstring); compare at equal n, against a floor.

    Calibrated over 100 seeds of 500 samples in the 128 features of the MNIST metric net, against the exact
    E[FD̂] (benchmarks/results_calibration.md): z sd 0.79 near the real-data floor (FD̂ ≈ 12), 0.98 and 0.93 at
    FD̂ ≈ 34 and 167; in the Fashion-MNIST metric net's features 0.97 / 0.96 / 1.02; with 2,000 samples 0.95 /
    1.01 / 0.94; with 100 samples 1.03 and 1.08 away from the floor and 0.74 (coverage 99 %) at it — conservative
    there. The usual bootstrap (rows drawn with replacement) was 1.7× too wide near the floor (z sd
    0.52): there FD̂'s spread is mostly its O(1/n) part, and repeated rows spread it more. Where the samples
    follow the reference's law exactly, any plug-in resampling overstates the spread, by about √2 (it adds a
    first-order part that vanishes only at the truth): the s.e. is then conservative.
    """
    check_positive_int(n_boot, "n_boot", low=2)
    a, b = _features(f1, "f1"), _features(f2, "f2")
    value = frechet_distance_features(a, b)
    mu_a, cov_a = gaussian_stats(a)
    mu_b, cov_b = gaussian_stats(b)
    w, v = torch.linalg.eigh((cov_a + cov_a.T) / 2)
    root = v * w.clamp_min(0.0).sqrt()  # root @ root.T = Ĉ₁
    g = make_generator(seed)
    boots = []
    for _ in range(n_boot):
        draw = mu_a + torch.randn(a.shape, generator=g, dtype=torch.float64) @ root.T
        boots.append(frechet_distance(*gaussian_stats(draw), mu_b, cov_b))
    return Estimate(value, float(np.std(boots, ddof=1)), len(a),
                    f"Fréchet distance, s.e. from {n_boot} Gaussian resamples of the samples (reference fixed)",
                    FD_UNIT)


# ---------------------------------------------------------------- precision and recall


@dataclass(frozen=True)
class PrecisionRecall:
    """k-NN precision and recall of generated features against real ones (Kynkäänniemi et al. 2019).

    Attributes
    ----------
    precision : share of generated examples inside the real manifold.
    recall : share of real examples inside the generated manifold.
    k : the neighbour that sets each ball's radius.
    n_real, n_fake : sizes of the two sets.
    """

    precision: float
    recall: float
    k: int
    n_real: int
    n_fake: int

    def as_dict(self) -> dict:
        return {"precision": self.precision, "recall": self.recall, "k": self.k, "n_real": self.n_real,
                "n_fake": self.n_fake}


def _chunk(n_other: int, budget: int) -> int:
    return max(1, budget // max(1, n_other))


def knn_radii(features, k: int = K_NEAREST, budget: int = DISTANCE_BUDGET) -> Tensor:
    """(n,) float64: each row's distance to its k-th nearest *other* row (the row itself is not counted)."""
    check_positive_int(k, "k")
    f = features if isinstance(features, Tensor) and features.dtype == torch.float64 else _features(features, "features")
    if len(f) <= k:
        raise KakusanError(f"k-NN radii with k = {k} need more than {k} examples, got {len(f)}")
    step = _chunk(len(f), budget)
    out = []
    for i in range(0, len(f), step):
        d = torch.cdist(f[i:i + step], f)
        out.append(d.topk(k + 1, dim=1, largest=False).values[:, k])  # index 0 is the row itself (distance 0)
    return torch.cat(out)


def manifold_coverage(points, centers, radii, budget: int = DISTANCE_BUDGET) -> Tensor:
    """(n,) bool: whether each of ``points`` lies in some ball B(centers[i], radii[i]) (boundary included)."""
    p = points if isinstance(points, Tensor) and points.dtype == torch.float64 else _features(points, "points")
    c = centers if isinstance(centers, Tensor) and centers.dtype == torch.float64 else _features(centers, "centers")
    r = torch.as_tensor(radii, dtype=torch.float64).reshape(-1)
    if len(r) != len(c) or p.shape[1] != c.shape[1]:
        raise KakusanError(f"manifold coverage needs one radius per center and features of one width; got "
                           f"{tuple(p.shape)} points, {tuple(c.shape)} centers, {len(r)} radii")
    step = _chunk(len(c), budget)
    out = []
    for i in range(0, len(p), step):
        out.append((torch.cdist(p[i:i + step], c) <= r).any(dim=1))
    return torch.cat(out)


def precision_recall(real, fake, k: int = K_NEAREST, budget: int = DISTANCE_BUDGET) -> PrecisionRecall:
    """k-NN precision and recall of ``fake`` (n_g, d) against ``real`` (n_r, d) features (module docstring).

    ``budget`` bounds the float64 distances held at once (rows per chunk = budget / the other set's size).
    """
    check_positive_int(k, "k")
    r, f = _features(real, "real"), _features(fake, "fake")
    if r.shape[1] != f.shape[1]:
        raise KakusanError(f"the feature sets have different widths {r.shape[1]} and {f.shape[1]}: use one "
                           "feature map for both")
    precision = manifold_coverage(f, r, knn_radii(r, k, budget), budget).double().mean()
    recall = manifold_coverage(r, f, knn_radii(f, k, budget), budget).double().mean()
    return PrecisionRecall(float(precision), float(recall), k, len(r), len(f))


# ---------------------------------------------------------------- class accuracy


def binomial_stderr(k: int, n: int) -> float:
    """The Agresti–Coull standard error of a share k/n: √(ã(1 − ã)/(n + 4)) with ã = (k + 2)/(n + 4).

    Unlike the Wald √(a(1 − a)/n) it is never 0 (about √2/(n + 4) for k = n), and its ±2 interval around
    k/n covers the true share at ≥ 90 % even where n(1 − a) is a handful (measured, see the module notes).
    """
    check_positive_int(n, "the number of trials n")
    if not 0 <= k <= n:
        raise KakusanError(f"a share needs 0 ≤ k ≤ n, got k = {k}, n = {n}")
    t = (k + 2) / (n + 4)
    return math.sqrt(t * (1 - t) / (n + 4))


def class_accuracy(logits_or_classifier: Tensor | Callable[[Tensor], Tensor], samples=None, labels=None,
                   batch_size: int = 1000) -> Estimate:
    """The share of samples classified as their intended label, with its standard error (:func:`binomial_stderr`:
    Agresti–Coull, calibrated near 100 %, where the Wald √(a(1−a)/n) is not).

    Either ``class_accuracy(logits, labels=y)`` with logits (n, C), or ``class_accuracy(classifier, x, y)``
    with a classifier: an object with ``.logits(x)`` (a metric net) or a callable returning logits (n, C),
    run without gradients on ``batch_size`` samples at a time.
    """
    if labels is None:
        raise KakusanError("class accuracy needs the intended labels: pass labels=")
    y = torch.as_tensor(labels).reshape(-1).long()
    if isinstance(logits_or_classifier, (Tensor, np.ndarray)):
        if samples is not None:
            raise KakusanError("pass either logits, or a classifier and samples — not logits and samples")
        logits = torch.as_tensor(logits_or_classifier)
    else:
        if samples is None:
            raise KakusanError("class accuracy with a classifier needs the samples: class_accuracy(net, x, y)")
        check_positive_int(batch_size, "batch_size")
        fn = getattr(logits_or_classifier, "logits", logits_or_classifier)
        x = torch.as_tensor(samples)
        with torch.no_grad():
            logits = torch.cat([fn(x[i:i + batch_size]).detach().cpu() for i in range(0, len(x), batch_size)]) \
                if len(x) else torch.empty(0, 1)
    if logits.ndim != 2 or len(logits) != len(y) or len(y) == 0:
        raise KakusanError(f"class accuracy needs logits (n, C) and n labels with n ≥ 1; got logits "
                           f"{tuple(logits.shape)} and {len(y)} labels")
    if int(y.min()) < 0 or int(y.max()) >= logits.shape[1]:
        raise KakusanError(f"labels must be classes 0..{logits.shape[1] - 1}, got {int(y.min())}..{int(y.max())}")
    k, n = int((logits.argmax(1).cpu() == y.cpu()).sum()), len(y)
    return Estimate(k / n, binomial_stderr(k, n), n, "class accuracy", "fraction")


__all__ = ["FD_UNIT", "K_NEAREST", "PrecisionRecall", "binomial_stderr", "class_accuracy", "fd_with_error",
           "frechet_distance", "frechet_distance_features", "gaussian_stats", "knn_radii", "manifold_coverage",
           "precision_recall"]
