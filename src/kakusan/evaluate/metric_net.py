"""The metric network: a small classifier per data set whose features stand in for Inception's in FID.

FID (Heusel et al. 2017) compares samples with data through the 2048 pool features of an Inception network
trained on ImageNet. Its weights come from the web, and an ImageNet network is a poor judge of 28 × 28
grey digits anyway; so kakusan trains, once per data set and on its own training split, a small
deterministic classifier, and measures samples in its penultimate layer (:mod:`kakusan.evaluate.sample_quality`):

- 28 × 28 (MNIST, Fashion-MNIST): conv 3×3 32 → ReLU → max-pool 2 → conv 3×3 64 → ReLU → max-pool 2 →
  linear 3136 → 128 → ReLU (the *features*) → linear 10 (the *logits*);
- 8 × 8 (digits): conv 3×3 32 → ReLU → conv 3×3 64 → ReLU → max-pool 2 → linear 1024 → 128 → ReLU → 10
  (pooling twice would leave 2 × 2 pixels).

Training (:data:`RECIPES`): cross-entropy, Adam with a cosine decay of the learning rate, batches of 64;
digits and MNIST images shifted at random by up to one pixel (Fashion-MNIST's are not: shifts cost it
accuracy); a fixed seed for the initial weights, the batch order and the shifts; through
:func:`kakusan.train.fit` with ``torch.use_deterministic_algorithms`` on, so on the CPU with the same
thread count two trainings give identical weights. Measured on 2 shared CPU cores: digits 15 epochs, a few
CPU-seconds, 98.0 % of its 297 test images; MNIST 3 epochs, ≈ 2 CPU-minutes, 99.2 %; Fashion-MNIST
5 epochs, ≈ 3.5 CPU-minutes, 91.7 %. The test accuracy is measured once and kept in the checkpoint.

The cache: ``<data home>/metric-nets/<name>.safetensors`` (``$KAKUSAN_DATA`` or ``~/.cache/kakusan``), a
:mod:`kakusan.checkpoint` file whose manifest holds the config, the training recipe and its results (test
accuracy, CPU time). :func:`get_metric_net` loads it when it is there and matches the current recipe; a
missing file is trained; a damaged or stale one (hash mismatch, wrong shapes, another recipe) is retrained
with a one-line warning on stderr — never a crash.

:func:`evaluate_samples` is what the generative models' commands call: Fréchet distance (± s.e. from Gaussian resamples),
k-NN precision and recall against the reference split, class accuracy for class-conditional samples, and the
*floor*: the same numbers for real images of the other split at the same sample size. FD̂ is biased upward
by O(1/n), so a sample's FD means something only next to this floor. (With ``reference="test"`` the floor's
images are training images, which the metric net has seen, so the floor also holds whatever differs between
the net's features of seen and unseen images.)

API
---
- :class:`MetricNetConfig`, :class:`MetricNet` (registered): ``features(x)`` (n, 128), ``logits(x)`` (n, C)
- :class:`Recipe`, :data:`RECIPES`, :data:`CONFIGS`; :func:`cache_dir`, :func:`cache_path`
- :func:`train_metric_net` (name) → (net, meta);  :func:`get_metric_net` (name, device, rebuild, progress) → net
- :func:`embed` (net, x) → (features, logits) in batches;  :func:`cached_metric_nets` → list of dicts
- :func:`evaluate_samples` (name, samples, labels=None, reference="test") → dict
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kakusan.errors import DataError, KakusanError, check_positive_int
from kakusan.registry import register_model

Tensor = torch.Tensor
VERSION = 1  # bump when training changes in a way the recipe does not record: caches of other versions retrain
VALUE_SLACK = 0.25  # inputs may overshoot [0, 1] by this much (then clamped); beyond it they are another convention


@dataclass(frozen=True)
class MetricNetConfig:
    """The classifier: image ``shape`` (H, W), conv ``channels`` (each conv → ReLU, then a 2 × 2 max-pool where
    ``pooled`` says so; empty: after every conv), ``hidden`` penultimate (feature) units, ``n_classes``
    outputs, square ``kernel`` (padded to keep the size)."""

    shape: tuple[int, int] = (28, 28)
    channels: tuple[int, ...] = (32, 64)
    hidden: int = 128
    n_classes: int = 10
    kernel: int = 3
    pooled: tuple[bool, ...] = ()


@dataclass(frozen=True)
class Recipe:
    """How a metric net is trained: passes over the training split, batch size, Adam's peak learning rate
    (cosine decay to 0), L2 weight decay, random shifts of each training image by up to ``shift`` pixels in
    each direction (0: none), and the seed of the initial weights, the batch order and the shifts."""

    epochs: int
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    shift: int = 0
    seed: int = 0


CONFIGS: dict[str, MetricNetConfig] = {
    "digits": MetricNetConfig(shape=(8, 8), pooled=(False, True)),
    "mnist": MetricNetConfig(),
    "fashion-mnist": MetricNetConfig(),
}
RECIPES: dict[str, Recipe] = {
    "digits": Recipe(epochs=15, batch_size=64, lr=2e-3, shift=1, seed=1),  # seeds 0-3: 96.0-98.0 % on 297 tests
    "mnist": Recipe(epochs=3, batch_size=64, shift=1),
    "fashion-mnist": Recipe(epochs=5, batch_size=64),  # 3 epochs: 90.5 %; with shifts 90.2 %
}


@register_model
class MetricNet(nn.Module):
    """A small CNN classifier whose penultimate layer gives the features of the sample metrics.

    Inputs are images in [0, 1] of shape (n, H, W), (n, 1, H, W) or flattened (n, H·W).
    """

    def __init__(self, config: MetricNetConfig = MetricNetConfig()):
        super().__init__()
        pooled = tuple(config.pooled) or (True,) * len(config.channels)
        if len(config.shape) != 2 or not config.channels or len(pooled) != len(config.channels):
            raise KakusanError(f"a metric net takes (H, W) images, at least one conv layer and one pooled flag per "
                               f"conv (or none), got {config}")
        self.config = config
        h, w = config.shape
        layers: list[nn.Module] = []
        c_in = 1
        for c, pool in zip(config.channels, pooled):
            layers += [nn.Conv2d(c_in, c, config.kernel, padding=config.kernel // 2), nn.ReLU()]
            c_in = c
            if pool:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
        if h < 1 or w < 1:
            raise KakusanError(f"{len(config.channels)} pooling layers are too many for {config.shape} images")
        self.conv = nn.Sequential(*layers)
        self.feature = nn.Linear(c_in * h * w, config.hidden)
        self.head = nn.Linear(config.hidden, config.n_classes)

    @classmethod
    def from_config(cls, config: MetricNetConfig) -> MetricNet:
        return cls(config)

    @property
    def input_shape(self) -> tuple[int, int]:
        return tuple(self.config.shape)

    @property
    def feature_dim(self) -> int:
        return self.config.hidden

    def features(self, x: Tensor) -> Tensor:
        """(n, hidden) penultimate activations (after the ReLU) of images ``x``."""
        return self._features(as_images(x, self.config.shape).to(self.feature.weight.device))

    def _features(self, x: Tensor) -> Tensor:
        """Features of images already checked by :func:`as_images` (training calls this: no value checks)."""
        return torch.relu(self.feature(self.conv(2.0 * x - 1.0).flatten(1)))

    def logits(self, x: Tensor) -> Tensor:
        """(n, n_classes) class logits of images ``x``."""
        return self.head(self.features(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.logits(x)


def as_images(x, shape: tuple[int, int]) -> Tensor:
    """``x`` as float32 (n, 1, H, W) in [0, 1]: from (n, H, W), (n, 1, H, W) or (n, H·W); values within
    [−0.25, 1.25] are clamped to [0, 1], values beyond mean another convention (a DataError says which)."""
    h, w = shape
    t = torch.as_tensor(x)
    if t.dtype == torch.bool or t.is_complex():
        raise DataError(f"samples must be real numbers, got {t.dtype}")
    t = t.float()
    n = t.shape[0] if t.ndim else 0
    if t.ndim == 2 and t.shape[1] == h * w or t.ndim == 3 and tuple(t.shape[1:]) == (h, w) \
            or t.ndim == 4 and tuple(t.shape[1:]) == (1, h, w):
        t = t.reshape(n, 1, h, w)
    else:
        raise DataError(f"the metric net takes images (n, {h}, {w}), (n, 1, {h}, {w}) or (n, {h * w}); got "
                        f"shape {tuple(t.shape)}")
    if t.numel():
        if not bool(torch.isfinite(t).all()):
            raise DataError("samples have non-finite values (nan or inf); the model diverged or the file is damaged")
        lo, hi = float(t.min()), float(t.max())
        if lo < -VALUE_SLACK or hi > 1 + VALUE_SLACK:
            raise DataError(f"samples must be images in [0, 1], got values in [{lo:.3g}, {hi:.3g}]: map [−1, 1] "
                            "images by (x + 1) / 2 and 8-bit ones by x / 255")
        t = t.clamp(0.0, 1.0)
    return t


def embed(net: MetricNet, x, batch_size: int = 1000) -> tuple[Tensor, Tensor]:
    """(features (n, hidden), logits (n, C)) of images ``x``, float32 on the CPU, in batches without gradients."""
    check_positive_int(batch_size, "batch_size")
    x = as_images(x, net.config.shape)
    device = net.feature.weight.device
    was = net.training
    net.eval()
    feats, logits = [], []
    try:
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                f = net._features(x[i:i + batch_size].to(device))
                feats.append(f.cpu())
                logits.append(net.head(f).cpu())
    finally:
        net.train(was)
    if not feats:
        return torch.empty(0, net.feature_dim), torch.empty(0, net.config.n_classes)
    return torch.cat(feats), torch.cat(logits)


# ---------------------------------------------------------------- the cache


def _name(name: str) -> str:
    from kakusan.data.datasets import ALIASES

    key = ALIASES.get(str(name).lower(), str(name).lower())
    if key not in CONFIGS:
        raise DataError(f"no metric net for {name!r}: metric nets exist for {', '.join(CONFIGS)}")
    return key


def cache_dir() -> Path:
    """``<data home>/metric-nets``: where the trained metric nets are kept."""
    from kakusan.data.datasets import data_home

    return data_home() / "metric-nets"


def cache_path(name: str) -> Path:
    """The cache file of data set ``name``'s metric net."""
    return cache_dir() / f"{_name(name)}.safetensors"


def _warn(message: str) -> None:
    sys.stderr.write(f"kakusan: warning: {message}\n")


@contextlib.contextmanager
def _deterministic():
    """``torch.use_deterministic_algorithms(True)`` inside, the previous setting restored after."""
    was, warn = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was, warn_only=warn)


def random_shift(x: Tensor, shift: int, generator: torch.Generator) -> Tensor:
    """Each image of ``x`` (n, 1, H, W) moved by its own random (dy, dx) ∈ {−shift … shift}², zeros filling in."""
    if shift == 0:
        return x
    n, _, h, w = x.shape
    padded = nn.functional.pad(x, (shift, shift, shift, shift))
    off = torch.randint(0, 2 * shift + 1, (2, n), generator=generator, device=generator.device).to(x.device)
    rows = (off[0][:, None] + torch.arange(h, device=x.device))[:, :, None]
    cols = (off[1][:, None] + torch.arange(w, device=x.device))[:, None, :]
    return padded[torch.arange(n, device=x.device)[:, None, None], 0, rows, cols].unsqueeze(1)


def _accuracy(net: MetricNet, x: Tensor, y: Tensor) -> float:
    return float((embed(net, x)[1].argmax(1) == y).double().mean())


def train_metric_net(name: str, device: str | torch.device | None = None, progress: bool = True,
                     data=None) -> tuple[MetricNet, dict[str, Any]]:
    """Train data set ``name``'s metric net from scratch with its :data:`RECIPES` entry; nothing is written.

    Returns the net (eval mode, on ``device``; None: the CPU) and its meta: recipe, test accuracy, CPU and
    wall seconds. ``data`` is the loaded :class:`~kakusan.data.Dataset` (default ``kakusan.data.load(name)``).
    """
    from kakusan.data import load
    from kakusan.data.batches import steps_per_epoch
    from kakusan.optim.schedules import make_scheduler
    from kakusan.runtime import pick_device
    from kakusan.train import StepOutput, TrainConfig, fit

    key = _name(name)
    config, recipe = CONFIGS[key], RECIPES[key]
    ds = load(key) if data is None else data
    if ds.y_train is None or ds.x_test is None or ds.y_test is None:
        raise DataError(f"{key}: a metric net needs labelled train and test splits")
    device = pick_device("cpu" if device is None else str(device))
    cpu, wall = time.process_time(), time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        net = MetricNet(config)
    net = net.to(device)
    x = as_images(ds.x_train, config.shape).to(device)
    y = ds.y_train.long().to(device)
    per_epoch = steps_per_epoch(len(x), recipe.batch_size)
    total = recipe.epochs * per_epoch
    optimizer = torch.optim.Adam(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)

    def objective(model: MetricNet, batch, generator) -> StepOutput:
        xb, yb = batch
        logits = model.head(model._features(xb))
        return StepOutput(nn.functional.cross_entropy(logits, yb),
                          metrics={"accuracy": (logits.argmax(1) == yb).float()})

    train_config = TrainConfig(steps=total, batch_size=recipe.batch_size, log_every=min(per_epoch, 50),
                               seed=recipe.seed, progress=progress, desc=f"metric net {key}")
    def shifted(batch, generator):
        return random_shift(batch[0], recipe.shift, generator), batch[1]

    with _deterministic():
        result = fit(net, objective, (x, y), optimizer, train_config, transform=shifted if recipe.shift else None,
                     scheduler=make_scheduler(optimizer, "cosine", total))
    net.eval()
    last = result.history[-1] if result.history else {}
    meta = {"data": key, "version": VERSION, "recipe": dataclasses.asdict(recipe),
            "test_accuracy": _accuracy(net, ds.x_test, ds.y_test), "n_train": len(x), "n_test": len(ds.x_test),
            "train_accuracy_last": last.get("accuracy"), "steps": total, "source": ds.source,
            "cpu_seconds": time.process_time() - cpu, "seconds": time.perf_counter() - wall,
            "device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__}
    return net, meta


def _cached(key: str, device) -> MetricNet:
    """The cached net of ``key``; a KakusanError (or any read error) says why it cannot be used."""
    from kakusan import checkpoint
    from kakusan.registry import config_to_json

    path = cache_path(key)
    _, head = checkpoint.load(path.parent, path.stem)  # checks the hash
    meta = head.get("meta", {})
    if meta.get("data") != key or meta.get("version") != VERSION or \
            meta.get("recipe") != dataclasses.asdict(RECIPES[key]):
        raise KakusanError("it was trained by another version or recipe")
    if head.get("config") != config_to_json(CONFIGS[key]):
        raise KakusanError("its architecture differs from the current one")
    net = checkpoint.load_model(path.parent, path.stem, map_location="cpu")  # shapes checked here
    if not isinstance(net, MetricNet):
        raise KakusanError(f"it holds a {type(net).__name__}, not a MetricNet")
    net.meta = {**meta, "path": str(path), "from_cache": True}
    return net.to(device).eval()


def get_metric_net(name: str, device: str | torch.device | None = None, rebuild: bool = False,
                   progress: bool = True) -> MetricNet:
    """Data set ``name``'s metric net (eval mode, on ``device``; None: the CPU) from the cache, trained first
    when the cache has none (or ``rebuild``); a damaged or stale cache file is retrained with a one-line warning.

    The net's ``meta`` attribute holds the manifest's meta (test accuracy, recipe, CPU seconds), ``path`` and
    ``from_cache`` (False when this call trained it).
    """
    from kakusan.checkpoint import save_model
    from kakusan.runtime import pick_device

    key = _name(name)
    device = pick_device("cpu" if device is None else str(device))
    path = cache_path(key)
    if path.exists() and not rebuild:
        try:
            return _cached(key, device)
        except Exception as e:  # noqa: BLE001 - whatever is wrong with the file, retraining fixes it
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            _warn(f"metric net cache {path} cannot be used ({reason}); retraining it")
    net, meta = train_metric_net(key, device, progress)
    save_model(path.parent, net, name=path.stem, meta=meta)
    net.meta = {**meta, "path": str(path), "from_cache": False}
    return net


def cached_metric_nets() -> list[dict[str, Any]]:
    """One dict per file in :func:`cache_dir`: data, path, bytes, and the meta (or ``error`` if unreadable)."""
    from kakusan import checkpoint

    out = []
    folder = cache_dir()
    for path in sorted(folder.glob("*.safetensors")) if folder.is_dir() else []:
        entry: dict[str, Any] = {"data": path.stem, "path": str(path), "bytes": path.stat().st_size}
        try:
            _, head = checkpoint.load(folder, path.stem)
            entry.update(head.get("meta", {}))
            if path.stem in CONFIGS:
                try:
                    _cached(path.stem, "cpu")
                    entry["current"] = True
                except KakusanError as e:
                    entry.update(current=False, stale=str(e))
        except Exception as e:  # noqa: BLE001 - a listing reports a damaged file, it does not fail on it
            entry["error"] = str(e).splitlines()[0] if str(e) else type(e).__name__
        out.append(entry)
    return out


# ---------------------------------------------------------------- evaluating samples


def evaluate_samples(name: str, samples, labels=None, reference: str = "test", *, net: MetricNet | None = None,
                     device: str | torch.device | None = None, k: int = 3, n_boot: int = 50, seed: int = 0,
                     progress: bool = True) -> dict[str, Any]:
    """Sample quality of ``samples`` (images in [0, 1]) of data set ``name``, next to the real-data floor.

    Features are the metric net's (:func:`get_metric_net`, trained on first use). Against the ``reference``
    split (``"test"`` or ``"train"``, all of it), returns plain numbers:

    - ``fd``, ``fd_stderr``: Fréchet distance and its s.e. (``n_boot`` Gaussian resamples; a spread, not a
      bias correction);
    - ``precision``, ``recall``: k-NN manifolds with ``k`` neighbours;
    - ``class_accuracy``, ``class_accuracy_stderr`` when ``labels`` (the intended classes) are given;
    - ``floor``: fd, fd_stderr, precision, recall of ``min(n, size)`` real images of the other split (chosen
      with ``seed``) against the same reference — what real data scores at the same sample size;
    - ``metric_net``: its path and test accuracy (the ceiling for class accuracy); sizes, k, units.
    """
    from kakusan.data import load
    from kakusan.evaluate.sample_quality import FD_UNIT, class_accuracy, fd_with_error, precision_recall
    from kakusan.runtime import make_generator

    key = _name(name)
    if reference not in ("test", "train"):
        raise KakusanError(f"reference must be 'test' or 'train', got {reference!r}")
    check_positive_int(k, "k")
    ds = load(key)
    net = get_metric_net(key, device, progress=progress) if net is None else net
    f_samples, logits = embed(net, samples)
    n = len(f_samples)
    if n <= k:
        raise KakusanError(f"sample metrics need more than k = {k} samples, got {n}")
    ref_x, other_x = (ds.x_test, ds.x_train) if reference == "test" else (ds.x_train, ds.x_test)
    f_ref = embed(net, ref_x)[0]
    pick = torch.randperm(len(other_x), generator=make_generator(seed))[:n]
    f_floor = embed(net, other_x[pick])[0]
    fd = fd_with_error(f_samples, f_ref, n_boot, seed)
    pr = precision_recall(f_ref, f_samples, k)
    floor_fd = fd_with_error(f_floor, f_ref, n_boot, seed + 1)
    floor_pr = precision_recall(f_ref, f_floor, k)
    result: dict[str, Any] = {
        "data": key, "reference": reference, "n_samples": n, "n_reference": len(f_ref),
        "fd": fd.value, "fd_stderr": fd.stderr, "precision": pr.precision, "recall": pr.recall,
        "floor": {"split": "train" if reference == "test" else "test", "n": len(f_floor), "fd": floor_fd.value,
                  "fd_stderr": floor_fd.stderr, "precision": floor_pr.precision, "recall": floor_pr.recall},
        "k": k, "n_boot": n_boot, "fd_unit": FD_UNIT, "feature_dim": net.feature_dim,
        "metric_net": {"path": getattr(net, "meta", {}).get("path"),
                       "test_accuracy": getattr(net, "meta", {}).get("test_accuracy")},
    }
    if labels is not None:
        acc = class_accuracy(logits, labels=labels)
        result.update(class_accuracy=acc.value, class_accuracy_stderr=acc.stderr)
    return result


__all__ = ["CONFIGS", "RECIPES", "VERSION", "MetricNet", "MetricNetConfig", "Recipe", "as_images", "cache_dir",
           "cache_path", "cached_metric_nets", "embed", "evaluate_samples", "get_metric_net", "train_metric_net"]
