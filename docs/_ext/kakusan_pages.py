"""Sphinx extension: the pages of the site that are generated at each build (into gitignored folders).

- ``docs/api/``: one API page per public package (:data:`API_PAGES`), each an ``automodule`` of the package
  and of every public submodule found in it now, so a new module appears without editing anything;
- ``docs/results/``: each ``benchmarks/results_*.md`` as a page. The chapter pages quote numbers from these
  files and link to them as ``../benchmarks/results_*.md``, which is right on GitHub and in a checkout; on
  the site (``source-read``) those links go to the generated pages, so the site shows the source of every
  quoted number.
"""

from __future__ import annotations

import pkgutil
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1]
ROOT = DOCS.parent

#: One API page per public package, in reading order: (page, title, modules it documents).
#: ``kakusan`` and ``kakusan.train`` collect the top-level modules; a package's page documents the package
#: itself and every public submodule found in it.
API_PAGES = [
    ("kakusan", "kakusan: loading runs, KL divergence, linear algebra, checkpoints",
     ["kakusan", "kakusan.divergence", "kakusan.linalg", "kakusan.mixture", "kakusan.registry",
      "kakusan.checkpoint", "kakusan.errors", "kakusan.files", "kakusan.runtime"]),
    ("gaussian", "kakusan.gaussian: the Gaussian", None),
    ("boltzmann", "kakusan.boltzmann: Boltzmann machines", None),
    ("optim", "kakusan.optim: the surrogate gradient step and EM", None),
    ("learn", "kakusan.learn: Boltzmann learning", None),
    ("rbm", "kakusan.rbm: restricted Boltzmann machines", None),
    ("mcmc", "kakusan.mcmc: Markov chain Monte Carlo and replica exchange", None),
    ("vae", "kakusan.vae: variational autoencoders", None),
    ("diffusion", "kakusan.diffusion: diffusion models", None),
    ("latent", "kakusan.latent: latent diffusion, prompt → image", None),
    ("text", "kakusan.text: the text encoder", None),
    ("evaluate", "kakusan.evaluate: likelihood estimators and sample metrics", None),
    ("train", "kakusan.train: the training loop", ["kakusan.train", "kakusan.train_state"]),
    ("data", "kakusan.data: data sets and transforms", None),
]


def package_modules(package: str) -> list[str]:
    """``package`` and its public submodules (names without a leading underscore), sorted."""
    path = (ROOT / "src" / package.replace(".", "/"))
    names = [info.name for info in pkgutil.iter_modules([str(path)]) if not info.name.startswith("_")]
    return [package, *(f"{package}.{name}" for name in sorted(names))]


def api_page(title: str, modules: list[str]) -> str:
    lines = [f"# {title}", "",
             "Generated from the docstrings at each build (`docs/_ext/kakusan_pages.py`). The chapter pages have the "
             "mathematics; this page has the calling conventions.", ""]
    for module in modules:
        if len(modules) > 1 and module != modules[0]:
            lines += [f"## `{module}`", ""]
        lines += [f"```{{eval-rst}}", f".. automodule:: {module}", "```", ""]
    return "\n".join(lines)


def api_index() -> str:
    lines = ["# API reference", "",
             "One page per public package, in the order of the chapters. Everything here is generated from the "
             "numpydoc docstrings of the code you have.", "", "```{toctree}", ":maxdepth: 1", ""]
    lines += [page for page, _, _ in API_PAGES]
    return "\n".join(lines + ["```", ""])


def write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` unless the file holds it already (so incremental builds stay incremental)."""
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def write_api_pages() -> None:
    api = DOCS / "api"
    api.mkdir(exist_ok=True)
    wanted = {"index.md": api_index()}
    for page, title, modules in API_PAGES:
        wanted[f"{page}.md"] = api_page(title, modules or package_modules(f"kakusan.{page}"))
    for name, text in wanted.items():
        write_if_changed(api / name, text)
    for stale in api.glob("*.md"):
        if stale.name not in wanted:
            stale.unlink()


RESULTS = DOCS / "results"
BENCHMARK_LINK = "](../benchmarks/results_"


def write_results_pages() -> None:
    RESULTS.mkdir(exist_ok=True)
    files = sorted((ROOT / "benchmarks").glob("results_*.md"))
    wanted = {"index.md": "\n".join([
        "# Benchmark results", "",
        "The measured numbers the chapters quote, each file as `make bench` or the command it names wrote it "
        "(`benchmarks/results_*.md` in the repository).", "",
        "```{toctree}", ":maxdepth: 1", "", *(f.stem for f in files), "```", ""])}
    for f in files:
        wanted[f.name] = "\n".join([f"```{{include}} ../../benchmarks/{f.name}", ":relative-images:",
                                     ":relative-docs: ../", "```", ""])
    for name, text in wanted.items():
        write_if_changed(RESULTS / name, text)
    for stale in RESULTS.glob("*.md"):
        if stale.name not in wanted:
            stale.unlink()


def link_results_on_the_site(app, docname: str, source: list[str]) -> None:
    """``source-read``: a page's links to ../benchmarks/results_*.md go to their pages in the site."""
    if not docname.startswith(("api/", "results/")):
        source[0] = source[0].replace(BENCHMARK_LINK, "](results/results_")


def write_pages(app) -> None:
    """``builder-inited``: the generated pages, before Sphinx looks for its sources."""
    write_api_pages()
    write_results_pages()


def setup(app):
    app.connect("builder-inited", write_pages)
    app.connect("source-read", link_results_on_the_site)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
