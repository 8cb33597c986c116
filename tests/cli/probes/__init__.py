"""The probe suite: hostile inputs to every subcommand, each ending with exit status 2 and one line on stderr
(``kakusan…: error: …``), or exit status 0 with a correct result.

The probes run in-process (``kakusan.cli.main``) on tiny data (``conftest.py``: the ``probe`` and ``fails``
fixtures, the data files and trained runs they share). One module per family:

- ``test_option_values``: every numeric option of every subcommand against negative, zero, NaN, ±inf,
  overflowing, fractional and non-numeric text (refused by the parser, or parsed to the value it names); options
  that do not apply to the chosen method;
- ``test_arrays``: hypothesis arrays (dtypes, shapes, NaN/inf) as ``.npy`` or ``.npz`` given to every command that
  reads a user array;
- ``test_files``: files that are not numpy, corrupted ``.npy``/``.npz`` files, ``--out`` and ``--run-dir`` paths;
- ``test_run_dirs``: corrupted and edited ``config.json`` files and damaged checkpoints of trained runs;
- ``test_divergence``: learning rates that blow training up;
- ``test_splits``: ``--holdout`` and ``--test FILE``, and evaluation without held-out data;
- ``test_data_get``: ``kakusan data get`` against bad names, wheels, cache folders and damaged caches;
- ``test_json``: strict ``--json`` output;
- ``test_probe_count``: the suite holds at least 500 probes.
"""
