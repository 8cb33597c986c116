"""``python -m kakusan …`` (and ``torchrun --nproc-per-node N -m kakusan …``) runs the ``kakusan`` command."""

import sys

from kakusan.cli import main

sys.exit(main())
