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
