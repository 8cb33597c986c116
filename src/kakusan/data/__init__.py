"""Data sets as tensors, and transforms between the value conventions the models use.

>>> from kakusan.data import load, binarise, to_spins, flatten
>>> ds = load("digits")                      # 1500 train / 297 test, (n, 8, 8) in [0, 1]
>>> s = to_spins(binarise(flatten(ds.x_train)))   # (1500, 64), values ±1

See ``docs/data.md`` for each data set's origin and how to get it.
"""

from kakusan.data.datasets import (
    DIGIT_NAMES,
    DIGIT_WORDS,
    FASHION_NAMES,
    FASHION_WORDS,
    LOADERS,
    Dataset,
    data_home,
    get_mnist,
    load,
    load_file,
    mnist_cache_path,
)
from kakusan.data.idx import read_idx, read_idx_pair, write_idx
from kakusan.data.transforms import (
    binarise,
    flatten,
    from_spins,
    from_symmetric,
    stochastic_binarise,
    to_spins,
    to_symmetric,
    unflatten,
)

NAMES: tuple[str, ...] = tuple(LOADERS)  # the named data sets

__all__ = [
    "DIGIT_NAMES", "DIGIT_WORDS", "FASHION_NAMES", "FASHION_WORDS", "NAMES", "Dataset", "binarise", "data_home",
    "flatten", "from_spins", "from_symmetric", "get_mnist", "load", "load_file", "mnist_cache_path", "read_idx",
    "read_idx_pair", "stochastic_binarise", "to_spins", "to_symmetric", "unflatten", "write_idx",
]
