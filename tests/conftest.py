import os
import shutil

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)  # pytest -n 2 runs two workers on two cores

# -- things a user may not have --------------------------------------------------------------------
# A test that needs one is marked ``@pytest.mark.requires("chromium")`` (or calls ``require("chromium")``).
# Without it the test skips with one line naming the command that installs it. Under CI (CI=true) it fails
# instead, since .ci/run installs everything: only a GPU may be missing there.

IN_CI = os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_binary() -> str | None:
    """Path of a Chromium (or Chrome) binary: ``$KAKUSAN_CHROMIUM``, else the first on PATH, else None."""
    given = os.environ.get("KAKUSAN_CHROMIUM")
    if given:
        return shutil.which(given)
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def _has_fashion_mnist() -> bool:
    from kakusan.data.datasets import FASHION_DIR, find_idx_files

    return find_idx_files(FASHION_DIR) is not None


def _has_mnist() -> bool:
    from kakusan.data.datasets import installed_mnist_pickle, mnist_cache_path

    return mnist_cache_path().is_file() or installed_mnist_pickle() is not None


def _has_docs_extra() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) is not None
               for name in ("sphinx", "myst_parser", "pydata_sphinx_theme", "sphinx-mathjax-offline"))


# name: (is it there?, the one-line reason naming the install command, may CI lack it?)
REQUIREMENTS = {
    "mnist": (_has_mnist, "MNIST not in the data cache: .venv/bin/kakusan data get mnist (make test runs it)", False),
    "fashion-mnist": (_has_fashion_mnist,
                      "Fashion-MNIST not installed: sudo apt-get install dataset-fashion-mnist", False),
    "chromium": (lambda: chromium_binary() is not None, "chromium not installed: sudo apt-get install chromium", False),
    "docs": (_has_docs_extra, "the docs extra is not installed: make docs (or make test) installs it", False),
    "gpu": (torch.cuda.is_available, "no CUDA GPU: run on a machine with an NVIDIA GPU and a CUDA build of torch",
            True),
}


def require(name: str) -> None:
    """Skip the calling test unless ``name`` (a key of REQUIREMENTS) is there; under CI=true fail instead,
    except for a GPU."""
    present, reason, ci_may_lack = REQUIREMENTS[name]
    if present():
        return
    if IN_CI and not ci_may_lack:
        pytest.fail(f"{reason} (CI=true: in CI only a GPU may be missing)", pytrace=False)
    pytest.skip(reason)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", f"requires(*names): skip (fail under CI=true, except gpu) unless each of {', '.join(REQUIREMENTS)} "
        "is there")


def pytest_runtest_setup(item):
    for mark in item.iter_markers("requires"):
        for name in mark.args:
            require(name)


@pytest.fixture
def chromium() -> str:
    """Path of the Chromium binary (skips, or fails under CI, if there is none)."""
    require("chromium")
    return chromium_binary()


@pytest.fixture
def gen() -> torch.Generator:
    """A seeded generator: tests never touch the global RNG."""
    g = torch.Generator()
    g.manual_seed(1234)
    return g
