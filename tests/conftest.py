import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)  # pytest -n 2 runs two workers on two cores


@pytest.fixture
def gen() -> torch.Generator:
    """A seeded generator: tests never touch the global RNG."""
    g = torch.Generator()
    g.manual_seed(1234)
    return g
