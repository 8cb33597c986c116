"""The probe suite's fixtures: ``probe`` and ``fails`` (run ``kakusan`` in-process and check the outcome), the tiny
data files and trained runs the probes share (``home``, ``files``, ``runs``, ``names``), and the bookkeeping of how
many probes each test made."""

from __future__ import annotations

import numpy as np
import pytest

from kakusan.cli import main

from .support import DESELECTED, FORBIDDEN, MADE, PASSED, declared_probes

TOTAL = {"n": 0}  # probes made in this process (all tests)


def pytest_configure(config):
    config.addinivalue_line("markers", "probes(n): a probe test that makes at least n probes (hypothesis examples)")


def pytest_deselected(items):
    if any(declared_probes(item) for item in items):
        items[0].config.stash[DESELECTED] = True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.stash[PASSED] = report.passed
    return report


class Prober:
    """``probe(argv)`` runs ``kakusan argv`` and checks the outcome is exit 0, or exit 2 with one line naming the
    error; ``probe.fails(argv, *words)`` also demands exit 2 (with each of ``words`` in the line)."""

    def __init__(self, capsys, node):
        self.capsys, self.node = capsys, node

    def count(self) -> None:
        """One more probe made by this test (``__call__`` counts its own; a parser-only check calls this)."""
        self.node.stash[MADE] = self.node.stash.get(MADE, 0) + 1
        TOTAL["n"] += 1

    def __call__(self, argv: list) -> tuple[int, str, str]:
        self.count()
        self.capsys.readouterr()
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as e:
            rc = e.code
        out, err = self.capsys.readouterr()
        lines = [line for line in err.splitlines() if line.strip()]
        assert not any(word in err for word in FORBIDDEN), err
        assert rc in (0, 2), (rc, argv, err)
        if rc == 2:
            assert len(lines) == 1, (argv, err)
            assert lines[0].startswith("kakusan") and ": error: " in lines[0], (argv, err)
        return rc, out, err

    def fails(self, argv: list, *words: str) -> str:
        rc, _, err = self(argv)
        assert rc == 2, (argv, err)
        for w in words:
            assert w in err, (w, err)
        return err


@pytest.fixture
def probe(capsys, request) -> Prober:
    return Prober(capsys, request.node)


@pytest.fixture
def fails(probe):
    return probe.fails


@pytest.fixture(autouse=True)
def _declared_probes_are_made(request):
    """A test that passed made at least the probes it declares (so the count test's sum is a true lower bound)."""
    yield
    if request.node.stash.get(PASSED, False):
        want, made = declared_probes(request.node), request.node.stash.get(MADE, 0)
        assert made >= want, f"{request.node.nodeid} declares {want} probes but made {made}"


# ---------------------------------------------------------------- tiny data and runs, shared by every module


@pytest.fixture(scope="session")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("probes")


@pytest.fixture(scope="session")
def files(home):
    rng = np.random.default_rng(0)
    paths = {
        "bits": home / "bits.npy", "spins": home / "spins.npy", "real": home / "real.npy", "img": home / "img.npy",
        "model": home / "model.npz", "labelled": home / "labelled.npz",
    }
    np.save(paths["bits"], rng.integers(0, 2, size=(24, 4)).astype(np.float32))
    np.save(paths["spins"], rng.choice([-1, 1], size=(40, 5)).astype(np.int8))
    np.save(paths["real"], rng.normal(size=(30, 3)))
    np.save(paths["img"], rng.random((16, 4, 4)).astype(np.float32))
    J = rng.normal(scale=0.3, size=(4, 4))
    J = np.triu(J, 1) + np.triu(J, 1).T
    np.savez(paths["model"], J=J, h=rng.normal(scale=0.1, size=4))
    np.savez(paths["labelled"], x=rng.random((10, 3)), y=rng.integers(0, 3, size=10))
    return paths


@pytest.fixture(scope="session")
def runs(home, files):
    """Tiny trained runs on files with no test split: an RBM, a Gaussian VAE, an MLP diffusion model."""
    paths = {"rbm": home / "rbm-run", "vae": home / "vae-run", "diffusion": home / "diffusion-run"}
    root = ["--runs-root", home / "runs"]
    argvs = {
        "rbm": ["rbm", "train", "--data", files["bits"], "--hidden", "2", "--epochs", "1", "--samples", "0",
                "--run-dir", paths["rbm"], *root],
        "vae": ["vae", "train", "--data", files["img"], "--likelihood", "gaussian", "--epochs", "1", "--latent", "2",
                "--hidden", "4", "--run-dir", paths["vae"], *root],
        "diffusion": ["diffusion", "train", "--data", files["real"], "--epochs", "1", "--hidden", "8", "--depth", "1",
                      "--T", "10", "--run-dir", paths["diffusion"], *root],
    }
    for name, argv in argvs.items():
        assert main([str(a) for a in argv]) == 0, name
    return paths


@pytest.fixture(scope="session")
def names(home, files, runs) -> dict[str, str]:
    """What ``{placeholders}`` in a probe's argv stand for: the data files, the runs and ``tmp`` (the folder)."""
    return {**{k: str(v) for k, v in files.items()}, **{k: str(v) for k, v in runs.items()}, "tmp": str(home)}
