"""IDX files: round trips for every element type and rank, and every way a file can be broken."""

import gzip

import numpy as np
import pytest

from kakusan.data.idx import IDX_TYPES, read_idx, read_idx_pair, write_idx
from kakusan.errors import DataError

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]
SHAPES = [(5,), (3, 7), (2, 3, 5), (2, 3, 1, 4)]  # distinct sizes, so swapped axes fail


def _array(dtype, shape, rng):
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    if info is not None:
        return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_round_trip_every_type_and_rank(tmp_path, dtype, shape):
    a = _array(dtype, shape, np.random.default_rng(0))
    b = read_idx(write_idx(tmp_path / "a.idx", a))
    assert b.dtype == np.dtype(dtype) and b.shape == shape
    np.testing.assert_array_equal(a, b)
    assert b.flags.writeable and b.dtype.isnative


def test_header_is_big_endian_with_the_standard_magic(tmp_path):
    raw = write_idx(tmp_path / "x-idx3-ubyte", np.zeros((2, 3, 258), np.int16)).read_bytes()
    assert raw[:4] == b"\x00\x00\x0b\x03"
    assert raw[4:16] == bytes([0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 1, 2])
    assert len(raw) == 16 + 2 * 3 * 258 * 2
    assert set(IDX_TYPES) == {0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E}


def test_values_are_big_endian_on_disk(tmp_path):
    raw = write_idx(tmp_path / "v.idx", np.array([1, 256], np.int32)).read_bytes()
    assert raw[8:] == bytes([0, 0, 0, 1, 0, 0, 1, 0])


def test_gzip_round_trip_and_detected_by_content(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / "t-images-idx3-ubyte.gz", a)
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(read_idx(path), a)
    renamed = tmp_path / "no-suffix"  # gzip found by its magic, not its name
    renamed.write_bytes(path.read_bytes())
    np.testing.assert_array_equal(read_idx(renamed), a)


@pytest.mark.parametrize("header", [b"\x01\x00\x08\x01", b"\x00\x00\x07\x01", b"\x00\x00\x08\x00",
                                    b"\x00\x00\x08\x05", b"\x00\x00", b""])
def test_bad_magic(tmp_path, header):
    path = tmp_path / "bad.idx"
    path.write_bytes(header + b"\x00\x00\x00\x01\x00")
    with pytest.raises(DataError, match="not an IDX file") as e:
        read_idx(path)
    assert str(path) in str(e.value)


def test_truncated_payload_names_file_and_byte_counts(tmp_path):
    path = write_idx(tmp_path / "x.idx", np.zeros((4, 5), np.float32))
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(DataError, match="truncated") as e:
        read_idx(path)
    msg = str(e.value)
    assert str(path) in msg and "needs 92 bytes" in msg and "has 89" in msg


def test_truncated_header(tmp_path):
    path = tmp_path / "h.idx"
    path.write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x02")
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)


def test_trailing_bytes(tmp_path):
    path = write_idx(tmp_path / "x.idx", np.zeros(6, np.uint8))
    path.write_bytes(path.read_bytes() + b"\x00\x00")
    with pytest.raises(DataError, match="2 trailing bytes") as e:
        read_idx(path)
    assert "needs 14 bytes" in str(e.value) and "has 16" in str(e.value)


def test_damaged_gzip(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07")[:-6])
    with pytest.raises(DataError, match="damaged gzip"):
        read_idx(path)


def test_pair_with_different_lengths(tmp_path):
    images = write_idx(tmp_path / "i.idx", np.zeros((5, 2, 2), np.uint8))
    labels = write_idx(tmp_path / "l.idx", np.zeros(4, np.uint8))
    with pytest.raises(DataError, match="5 images but 4 labels"):
        read_idx_pair(images, labels)
    write_idx(labels, np.zeros(5, np.uint8))
    x, y = read_idx_pair(images, labels)
    assert x.shape == (5, 2, 2) and y.shape == (5,)


def test_write_rejects_what_idx_cannot_hold(tmp_path):
    with pytest.raises(DataError, match="dtype"):
        write_idx(tmp_path / "a.idx", np.zeros(3, np.int64))
    with pytest.raises(DataError, match="1 to 4 dimensions"):
        write_idx(tmp_path / "a.idx", np.zeros((1,) * 5, np.uint8))
