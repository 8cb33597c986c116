"""Every figure in docs/figures: the command that draws it, its cost, and one command that redraws the cheap ones.

    make figures                                   # = python benchmarks/figures.py --out docs/figures
    python benchmarks/figures.py --list            # the table: figure, cost, command
    python benchmarks/figures.py --only tour-mcmc,intuition --out /tmp/figs

:data:`RECIPES` is the manifest. Each recipe is a list of shell commands, run from a scratch folder, and a map from
the file names the docs pages link (``docs/figures/NAME``) to where those commands write them (the tour writes
``RUN/figures/NAME``, ``kakusan ising fit`` its run's ``figures/``). Costs, on 2 CPU cores:

- ``seconds`` and ``minutes``: run by ``make figures``, which copies the results under the docs' names;
- ``trained run``: needs a model trained for tens of minutes or more (not in CI);
- ``benchmark``: a long benchmark that also rewrites a ``benchmarks/results_*.md`` file.

For the last two, ``make figures`` prints the command to run instead and draws nothing. Every tour chapter runs on
its own (``kakusan tour --chapters NAME``, seed 0, size ``default``): that is the run whose numbers the pages and
``benchmarks/results_*.md`` quote, so the figures and the quoted numbers come from the same run.
``tests/docs/test_figures_manifest.py`` checks that every PNG in docs/figures has a recipe and that every
command names a script, module, page block or CLI subcommand that exists.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
DOCS_FIGURES = ROOT / "docs" / "figures"
COSTS = ("seconds", "minutes", "trained run", "benchmark")
CHEAP = ("seconds", "minutes")
# A command that runs a ```python block of a docs page: ("page-block", page, the heading the block follows).
PAGE_BLOCK = "page-block"


@dataclass(frozen=True)
class Recipe:
    """Shell commands (run in a scratch folder) and the figures they draw: docs name -> path they write."""

    name: str
    cost: str
    commands: tuple[tuple[str, ...], ...]
    files: dict[str, str] = field(default_factory=dict)
    note: str = ""

    def shell(self) -> str:
        """The commands as one shell line, as a user would type them (from the repository root)."""
        parts = []
        for cmd in self.commands:
            if cmd[0] == PAGE_BLOCK:
                parts.append(f"run the ```python block after '{cmd[2]}' in {cmd[1]} (from the repository root)")
            else:
                parts.append(shlex.join(cmd))
        return " && ".join(parts)


def _tour(chapter: str, cost: str, files: dict[str, str], note: str = "") -> Recipe:
    run = f"tour-{chapter}"
    return Recipe(f"tour-{chapter}", cost, (("kakusan", "tour", "--chapters", chapter, "--run-dir", run),),
                  {docs: f"{run}/figures/{made}" for docs, made in files.items()}, note)


RECIPES: tuple[Recipe, ...] = (
    Recipe("intuition", "seconds", (("python", "-m", "kakusan.report.intuition", "."),),
           {name: name for name in ("intuition_log.png", "intuition_jensen.png", "intuition_surrogate.png")},
           "the lecture note's three figures (kakusan.report.intuition)"),
    _tour("gaussian", "seconds", {"gaussian_contour.png": "gaussian_contour.png",
                                  "gaussian_kl_gap.png": "gaussian_kl_gap.png"}),
    Recipe("boltzmann-fit", "seconds", (
        ("python", "-c", "from kakusan.boltzmann import instances, save_ising_npz; save_ising_npz('sk12.npz', "
                         "instances.sherrington_kirkpatrick(12, beta=1.0, field_std=0.3, seed=7))"),
        ("kakusan", "ising", "sample", "sk12.npz", "-n", "20000", "--out", "data.npy", "--seed", "1"),
        ("kakusan", "ising", "fit", "data.npy", "--out", "learned.npz", "--truth", "sk12.npz", "--steps", "500",
         "--run-dir", "fitrun")),
           {"boltzmann_kl.png": "fitrun/figures/kl.png", "boltzmann_couplings.png": "fitrun/figures/couplings.png",
            "boltzmann_moments.png": "fitrun/figures/moments.png"},
           "the commands of docs/boltzmann.md §5"),
    Recipe("mcmc-example", "seconds", ((PAGE_BLOCK, "docs/mcmc.md", "## A runnable example"),),
           {name: f"docs/figures/{name}" for name in ("mcmc_energy_trace.png", "mcmc_autocorrelation.png",
                                                      "mcmc_blocking.png")},
           "the page's own script (about 7 CPU-seconds)"),
    _tour("mcmc", "seconds", {"tempering_magnetization.png": "mcmc_magnetization.png",
                              "tempering_energy.png": "mcmc_energy.png",
                              "tempering_autocorrelation.png": "mcmc_autocorrelation.png",
                              "tempering_swaps.png": "mcmc_swaps.png", "tempering_walk.png": "mcmc_walk.png"},
          "docs/tempering.md quotes this run's R-hat values"),
    _tour("rbm", "minutes", {name: name for name in ("rbm_loglik.png", "rbm_filters.png", "rbm_samples.png",
                                                     "rbm_ais.png")},
          "the run of benchmarks/results_rbm.md, 'The tour's RBM section'"),
    _tour("vae", "minutes", {name: name for name in ("vae_bound.png", "vae_samples.png", "vae_reconstructions.png",
                                                     "vae_latent_map.png", "hvae_kl_units.png")},
          "the run of benchmarks/results_vae.md, 'The tour's VAE section'"),
    Recipe("rbm-mnist", "trained run", (
        ("kakusan", "rbm", "train", "--data", "mnist", "--hidden", "500", "--method", "pcd", "--centered", "--epochs",
         "400", "--batch-size", "100", "--lr", "0.05", "--momentum", "0.5", "--schedule", "linear", "--weight-decay",
         "1e-4", "--checkpoint-every", "6000", "--seed", "0", "--run-dir", "mnist-pcd400"),),
           {"rbm_mnist_samples.png": "mnist-pcd400/figures/samples.png",
            "rbm_mnist_filters.png": "mnist-pcd400/figures/filters.png"},
           "about 40 CPU-minutes (benchmarks/results_rbm.md, 400 epochs); copy the two figures from the run"),
    Recipe("hvae-ar-10min-elbo", "trained run", (
        ("kakusan", "vae", "train", "--data", "mnist", "--model", "hvae", "--layers", "2", "--inference", "markov",
         "--warmup", "6000", "--schedule", "cosine", "--autoregressive", "7", "--ar-channels", "4", "--epochs", "57",
         "--seed", "0", "--run-dir", "hvae-ar-10min-elbo"),),
           {"hvae_ar_samples.png": "hvae-ar-10min-elbo/figures/samples.png"},
           "about 10 CPU-minutes (benchmarks/results_vae.md, 'An autoregressive decoder', the 10-minute "
           "configuration); the training run draws its samples itself"),
    Recipe("rbm-race", "benchmark", (
        ("python", "benchmarks/bench_rbm_race.py", "--json", "race.json", "--figure", "race.png"),),
           {"rbm_race.png": "race.png"},
           "about 50 minutes against scikit-learn, rbms and learnergy (benchmarks/results_rbm.md); "
           "`--from-json race.json --figure race.png` redraws it from a saved race"),
    Recipe("rbm-seeds", "seconds", (("python", "benchmarks/bench_seeds.py", "--from-json", "--figure",
                                     "rbm_seeds.png"),),
           {"rbm_seeds.png": "rbm_seeds.png"},
           "CD/PCD/PT over 16 seeds, redrawn from benchmarks/results_seeds.json; the run itself "
           "(benchmarks/bench_seeds.py, about 27 CPU-minutes for all its comparisons) writes that file"),
    Recipe("prompt-model", "seconds", (("python", "benchmarks/figures.py", "--prompt", "."),),
           {name: name for name in ("prompt_grid.png", "prompt_guidance.png", "prompt_edit.png",
                                    "prompt_confusion.png")},
           "the shipped model's samples, guidance sweep and edits, and the zero-shot confusion matrix saved in "
           "benchmarks/results_prompt_confusion.json, drawn by bench_prompt.figures with its seed 0 "
           "(about 15 CPU-seconds)"),
    Recipe("prompt", "benchmark", (
        ("python", "benchmarks/bench_prompt.py", "--guidances", "1,2,3,5", "--fd-samples", "500", "--results",
         "benchmarks/results_prompt.md", "--figures", "docs/figures", "--json", "--no-progress"),),
           {"prompt_paraphrases.png": "prompt_paraphrases.png"},
           "the shipped model's benchmark (benchmarks/results_prompt.md: accuracy on held-out paraphrases; it "
           "also measures the zero-shot confusion matrix again); writes into docs/figures itself, with the "
           "prompt-model figures"),
    Recipe("diffusion-mnist", "trained run", (
        ("python", "benchmarks/figures_diffusion.py", "runs/ddpm-mnist-cond", "--only", "forward", "samplers",
         "classes", "fd_nfe", "--out", "docs/figures"),),
           {name: name for name in ("diffusion_mnist_forward.png", "diffusion_mnist_samplers.png",
                                    "diffusion_mnist_classes.png", "diffusion_mnist_fd_nfe.png")},
           "needs the trained run runs/ddpm-mnist-cond (benchmarks/results_diffusion_mnist.md); about 1 "
           "CPU-minute once it is there; writes into docs/figures itself"),
    Recipe("diffusion-mnist-vlb", "trained run", (
        ("python", "benchmarks/figures_diffusion.py", "runs/ddpm-mnist-cond-r2", "--decoder-run",
         "runs/ddpm-mnist-cond-r2-head10", "--only", "vlb_t", "--out", "docs/figures"),),
           {"diffusion_mnist_vlb_t.png": "diffusion_mnist_vlb_t.png"},
           "needs the twice-trained run runs/ddpm-mnist-cond-r2 and the ten-step head fitted to it, "
           "runs/ddpm-mnist-cond-r2-head10 (benchmarks/results_diffusion_decoder.md); about 2 CPU-minutes once "
           "they are there; writes into docs/figures itself"),
    Recipe("diffusion-fashion", "trained run", (
        ("python", "benchmarks/figures_diffusion.py", "runs/ddpm-fashion-cond4", "--only", "classes", "--out",
         "docs/figures"),),
           {"diffusion_fashion_classes.png": "diffusion_fashion_classes.png"},
           "needs the 4-epoch Fashion-MNIST run runs/ddpm-fashion-cond4 (benchmarks/results_diffusion_fashion.md, "
           "'Four epochs'); 12 CPU-seconds once it is there; writes into docs/figures itself"),
)

# docs/figures/NAME -> its recipe.
MANIFEST: dict[str, Recipe] = {name: r for r in RECIPES for name in r.files}


def page_block(page: str, heading: str) -> str:
    """The first ```python block after ``heading`` in ``page`` (a path from the repository root)."""
    text = (ROOT / page).read_text(encoding="utf-8")
    _, found, rest = text.partition(f"\n{heading}\n")
    if not found:
        raise SystemExit(f"{page} has no heading {heading!r}")
    block = re.search(r"```python\n(.*?)```", rest, flags=re.S)
    if block is None:
        raise SystemExit(f"{page} has no ```python block after {heading!r}")
    return block.group(1)


def _argv(cmd: tuple[str, ...]) -> list[str]:
    """A manifest command as this interpreter runs it (``kakusan`` and ``python`` from the same environment)."""
    if cmd[0] == PAGE_BLOCK:
        return [sys.executable, "-c", page_block(cmd[1], cmd[2])]
    if cmd[0] == "kakusan":
        return [sys.executable, "-m", "kakusan", *cmd[1:]]
    if cmd[0] == "python":  # a script named from the repository root runs from the scratch folder too
        script = ROOT / cmd[1]
        return [sys.executable, *([str(script)] if cmd[1].endswith(".py") and script.is_file() else [cmd[1]]), *cmd[2:]]
    return list(cmd)


def draw(recipe: Recipe, out: Path, keep: Path | None = None) -> list[Path]:
    """Run ``recipe`` in a scratch folder and copy its figures into ``out`` under the docs' names.

    With ``keep``, the scratch folder is ``keep/<recipe name>`` (it must not exist) and stays, with the runs'
    ``metrics.jsonl``, so that the numbers the pages quote can be compared with the run that drew the figures."""
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    with tempfile.TemporaryDirectory(prefix=f"figures-{recipe.name}-") as tmp:
        work = Path(tmp) if keep is None else keep / recipe.name
        (work / "docs" / "figures").mkdir(parents=True)  # where page blocks write
        for cmd in recipe.commands:
            subprocess.run(_argv(cmd), cwd=work, env=env, check=True, stdout=subprocess.DEVNULL)
        written = []
        for name, made in recipe.files.items():
            shutil.copyfile(work / made, out / name)
            written.append(out / name)
    return written


def prompt_figures(out: Path) -> list[Path]:
    """The prompt chapter's figures that need only the shipped model and a saved measurement: ``bench_prompt.figures``
    with the benchmark's seed 0 on the CPU and the zero-shot confusion matrix the benchmark saved
    (``benchmarks/results_prompt_confusion.json``), into ``out``, as ``bench_prompt.py --figures`` draws them."""
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_prompt import figures

    from kakusan.commands.generate import load_prompt_model

    saved = json.loads((ROOT / "benchmarks" / "results_prompt_confusion.json").read_text(encoding="utf-8"))
    zeroshot = {"confusion": saved["matrix"], "samples": saved["samples"],
                "images_per_domain": saved["images_per_domain"]}
    bench = SimpleNamespace(model=load_prompt_model(None, "cpu"), args=SimpleNamespace(seed=0),
                            device=torch.device("cpu"))
    return figures(bench, {"zeroshot": zeroshot}, out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(DOCS_FIGURES), help="folder for the PNGs (default docs/figures)")
    p.add_argument("--only", default=None, help="comma-separated recipe names (default: every cheap one)")
    p.add_argument("--list", action="store_true", help="print the manifest and draw nothing")
    p.add_argument("--keep", default=None, metavar="DIR",
                   help="run each recipe in DIR/<recipe> and keep it (run directories, metrics.jsonl)")
    p.add_argument("--prompt", default=None, metavar="DIR", help=argparse.SUPPRESS)  # the prompt-model recipe
    args = p.parse_args(argv)
    if args.prompt:
        for path in prompt_figures(Path(args.prompt)):
            print(path)
        return 0
    if args.list:
        for name, r in sorted(MANIFEST.items()):  # the commands run in a scratch folder and write r.files[name]
            print(f"{name:32s} {r.cost:12s} {r.shell()}  [writes {r.files[name]}]")
        return 0
    names = [n.strip() for n in args.only.split(",")] if args.only else None
    known = {r.name for r in RECIPES}
    if names and (unknown := [n for n in names if n not in known]):
        print(f"figures.py: unknown recipe(s) {', '.join(unknown)}: choose from {', '.join(sorted(known))}",
              file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    chosen = [r for r in RECIPES if (r.name in names if names else r.cost in CHEAP)]
    for r in chosen:
        if r.cost not in CHEAP:
            continue
        print(f"== {r.name} ({r.cost}): {r.shell()}", flush=True)
        for path in draw(r, out, Path(args.keep) if args.keep else None):
            print(f"   {path}", flush=True)
    costly = [r for r in RECIPES if r.cost not in CHEAP and (r in chosen or not names)]
    if costly:
        print("\nNot drawn (they need a trained run or a long benchmark); run these from the repository root, then "
              "copy the figures to docs/figures under these names:")
        for r in costly:
            print(f"\n# {', '.join(r.files)} ({r.cost}: {r.note})\n{r.shell()}")
            moves = [f"{made} -> docs/figures/{name}" for name, made in r.files.items() if made != name]
            if moves:
                print("#   " + "; ".join(moves))
    return 0


if __name__ == "__main__":
    sys.exit(main())
