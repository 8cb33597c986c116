"""The IDX file format of MNIST and Fashion-MNIST: read, write, and check image/label pairs.

An IDX file is a 4-byte magic number ``00 00 TT DD`` (``TT`` the element type, ``DD`` the
number of dimensions), then ``DD`` big-endian uint32 sizes, then the elements in C order,
big-endian. Files ending in ``.gz`` (or starting with the gzip magic) are decompressed.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from kakusan.errors import DataError

# Type code -> element dtype as stored (big-endian).
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODE_OF_KIND = {(dt.kind, dt.itemsize): code for code, dt in IDX_TYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
MAX_NDIM = 4


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it is gzip-compressed."""
    raw = path.read_bytes()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: damaged gzip file ({e}); download it again") from None


def _parse_header(path: Path, raw: bytes) -> tuple[np.dtype, tuple[int, ...], int]:
    """(element dtype, shape, header length) from an IDX file's first bytes."""
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in IDX_TYPES or not 1 <= raw[3] <= MAX_NDIM:
        magic = raw[:4].hex(" ") or "empty"
        raise DataError(
            f"{path}: not an IDX file (magic {magic}; expected 00 00 <type 08/09/0b/0c/0d/0e> <ndim 1-4>)"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: IDX file is truncated: expected at least {header} header bytes, got {len(raw)}")
    shape = tuple(int(n) for n in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    return IDX_TYPES[raw[2]], shape, header


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into a native-endian numpy array.

    Parameters
    ----------
    path : str or Path
        The file, e.g. ``train-images-idx3-ubyte.gz``.

    Returns
    -------
    numpy.ndarray
        Of the shape the header records, e.g. ``(60000, 28, 28)`` uint8 for MNIST images.

    Raises
    ------
    DataError
        The magic number is wrong, or the payload is shorter or longer than the header says
        (the message names the file and both byte counts).
    """
    path = Path(path)
    raw = _read_bytes(path)
    dtype, shape, header = _parse_header(path, raw)
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        problem = "truncated" if len(raw) < expected else f"{len(raw) - expected} trailing bytes"
        raise DataError(
            f"{path}: IDX file has {problem}: header {shape} needs {expected} bytes, file has {len(raw)}; "
            "download it again"
        )
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))  # a writable native-endian copy


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file; a path ending ``.gz`` is gzip-compressed.

    Parameters
    ----------
    path : str or Path
        Where to write.
    array : numpy.ndarray, shape (d1[, d2[, d3[, d4]]])
        uint8, int8, int16, int32, float32 or float64; 1 to 4 dimensions.

    Returns
    -------
    Path
        The path written.
    """
    path = Path(path)
    array = np.asarray(array)
    code = _CODE_OF_KIND.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        raise DataError(
            f"IDX cannot store dtype {array.dtype}: convert to uint8, int8, int16, int32, float32 or float64"
        )
    if not 1 <= array.ndim <= MAX_NDIM:
        raise DataError(f"IDX stores 1 to {MAX_NDIM} dimensions, got shape {array.shape}: reshape the array")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()
    data = header + payload
    path.write_bytes(gzip.compress(data, mtime=0) if path.name.endswith(".gz") else data)
    return path


def check_pair(images: np.ndarray, labels: np.ndarray, *, source: str) -> None:
    """Raise DataError unless ``images`` (n, ...) and ``labels`` (n,) hold the same number of examples."""
    if labels.ndim != 1:
        raise DataError(f"{source}: labels must be one-dimensional, got shape {labels.shape}; check the label file")
    if len(images) != len(labels):
        raise DataError(
            f"{source}: {len(images)} images but {len(labels)} labels; "
            "the image and label files must come from the same split"
        )


def read_idx_pair(images_path: str | Path, labels_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an images file and its labels file, checking that their lengths agree.

    Returns
    -------
    images : numpy.ndarray, shape (n, ...)
    labels : numpy.ndarray, shape (n,)
    """
    images, labels = read_idx(images_path), read_idx(labels_path)
    check_pair(images, labels, source=f"{images_path} / {Path(labels_path).name}")
    return images, labels
