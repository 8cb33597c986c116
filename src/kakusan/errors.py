"""User-facing errors: one line that names the problem and the fix.

The CLI turns a :class:`KakusanError` into ``kakusan: error: <message>`` on stderr with exit
status 2, never a traceback. Library users catch it as a ``ValueError``.
"""


class KakusanError(ValueError):
    """A problem with the user's input or environment, with the fix in the message."""


class DataError(KakusanError):
    """A data set is missing, malformed or of the wrong shape or values."""


class CheckpointError(KakusanError):
    """A checkpoint or run directory is missing, incomplete or of an unknown model."""


def check_positive_int(value, name: str, low: int = 1) -> int:
    """``value`` itself if it is a Python ``int`` (not a bool) ≥ ``low``; else a :class:`KakusanError` naming ``name``.

    The message reads "``name`` must be a positive integer, got …" (``low`` = 1), "… a non-negative integer …"
    (``low`` = 0) or "… an integer ≥ ``low`` …". Counts, sizes and step numbers across the library use it.
    """
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        kind = {1: "a positive integer", 0: "a non-negative integer"}.get(low, f"an integer ≥ {low}")
        raise KakusanError(f"{name} must be {kind}, got {value!r}")
    return value
