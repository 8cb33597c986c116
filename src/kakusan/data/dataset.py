"""The :class:`Dataset` type that every loader returns: tensors, class names and where they came from."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from kakusan.errors import DataError


@dataclass(frozen=True, eq=False)
class Dataset:
    """A data set as tensors.

    Attributes
    ----------
    name : str
        ``digits``, ``mnist``, ``fashion-mnist`` or the user's file name.
    x_train : Tensor, shape (n_train, ...)
        float32; images are (n, H, W) in [0, 1]; user arrays keep their shape and values.
    y_train : Tensor, shape (n_train,), or None
        int64 class labels; ``None`` for unlabelled data.
    x_test, y_test : Tensor or None
        The test split, or ``None`` where the data has none (user arrays without one).
    class_names : tuple of str
        Label i is ``class_names[i]`` (e.g. ``"7"``, ``"Sneaker"``); empty without labels.
    class_words : tuple of str
        Lower-case nouns for captions (``"seven"``, ``"sneaker"``); empty where there are none.
    source : str
        Where the data was read from.
    """

    name: str
    x_train: torch.Tensor = field(repr=False)
    y_train: torch.Tensor | None = field(repr=False)
    x_test: torch.Tensor | None = field(repr=False)
    y_test: torch.Tensor | None = field(repr=False)
    class_names: tuple[str, ...] = ()
    class_words: tuple[str, ...] = field(default=(), repr=False)
    source: str = ""

    def __post_init__(self) -> None:
        for x, y, split in ((self.x_train, self.y_train, "train"), (self.x_test, self.y_test, "test")):
            if x is not None and y is not None and len(x) != len(y):
                raise DataError(f"{self.name}: {len(x)} {split} examples but {len(y)} labels; they must match")

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of one example, e.g. (28, 28)."""
        return tuple(self.x_train.shape[1:])

    @property
    def n_features(self) -> int:
        """Values per example (the D of :func:`kakusan.data.flatten`), e.g. 784."""
        return math.prod(self.shape)

    @property
    def n_classes(self) -> int:
        """Number of classes (0 for unlabelled data)."""
        return len(self.class_names)

    @property
    def n_train(self) -> int:
        return len(self.x_train)

    @property
    def n_test(self) -> int:
        return 0 if self.x_test is None else len(self.x_test)

    def describe(self) -> dict:
        """Sizes, shape, classes and value range, as plain JSON-ready values."""
        xs = [x for x in (self.x_train, self.x_test) if x is not None and x.numel()]
        return {
            "name": self.name, "source": self.source, "n_train": self.n_train, "n_test": self.n_test,
            "shape": list(self.shape), "n_features": self.n_features,
            "dtype": str(self.x_train.dtype).removeprefix("torch."),
            "min": min(x.min().item() for x in xs) if xs else None,
            "max": max(x.max().item() for x in xs) if xs else None,
            "labelled": self.y_train is not None, "classes": list(self.class_names),
        }


# -- where things live -----------------------------------------------------------------------------
