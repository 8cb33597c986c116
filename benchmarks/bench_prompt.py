"""The prompt → image model against its goals: class accuracy of class-name prompts, of held-out paraphrases, speed,
zero-shot classification by the diffusion ELBO, and FD per domain.

The model is ``--model RUN`` (a run of ``kakusan generate train``) or, by default, the one shipped in the package
(:func:`kakusan.commands.generate.load_prompt_model`). Images are drawn with ``model.generate`` at the default
settings (``--sampler dpm++2m``, ``--steps 20``, ``--guidance 3``, against the empty prompt); each distinct
prompt is encoded once, and images of several prompts share one sampler call (``--batch`` images). A generated
image of class c is classified by its domain's metric net (:mod:`kakusan.evaluate.metric_net`): classes 0–9 by
the "mnist" net (label c), 10–19 by the "fashion-mnist" net (label c − 10). Accuracies carry the binomial
standard error of :func:`kakusan.evaluate.sample_quality.binomial_stderr` (Agresti–Coull; results written before
2026-12-06 carry the Wald √(a(1 − a)/n), too small near 100 %). The parts (``--parts``, all by default):

1. ``classes`` — N images (``--n``, default 100) from ``class_prompt(c)`` for each of the 20 classes: accuracy
   per domain ± s.e. (goal ≥ 95 % each) and per class (with the class it is most often taken for);
   ``--guidances 1,2,3,5`` adds a sweep table (accuracy per domain at each guidance scale).
2. ``paraphrases`` — M images (``--m``, default 20) from every caption of ``captions(c, "held-out")``, never seen
   in training: accuracy per domain ± s.e. (goal ≥ 80 %) and per prompt.
3. ``speed`` — (a) warm, in this process: ``model.generate("a pair of trousers", n=16)`` with the model and the
   text encoder already loaded, one untimed call, then the median of ``--warm-repeats`` (5) (goal ≤ 2 s);
   (b) cold, end to end: the wall time of the subprocess ``kakusan generate "a pair of trousers" -n 16 --out
   TMP.png`` (``.venv/bin/kakusan``, with ``--model`` when given), median of ``--cold-repeats`` (3) (goal
   ≤ 15 s). Torch threads (``--threads``, default the cores this process may use), the CPU (``lscpu``) and
   the load average are recorded.
4. ``zeroshot`` — the diffusion classifier (:func:`kakusan.latent.classify.prompt_scores`, ``--samples`` S (t, ε)
   draws per image, default 32) on the first K MNIST and the first K Fashion-MNIST test images of
   ``joint_images("test")`` (``--zeroshot-images`` K, default 200), scored against all 20 class prompts.
   The 10-way digit classifier (goal ≥ 90 % on MNIST) is the argmax over the ten digit prompts' scores: the
   (t, ε) draws depend only on the image and the seed, never on the prompts, so these columns are exactly
   what ``prompt_scores`` returns for the ten digit prompts alone. Also reported: the 20-way accuracy per
   domain, the 10-way one on Fashion-MNIST, the seconds, and the 20 × 20 confusion matrix (rows: true class,
   columns: predicted) saved as ``<prefix>.npy`` and ``<prefix>.json`` (``--confusion PREFIX``; default
   beside ``--results``: ``<results stem>_confusion``).
5. ``fd`` — Fréchet distance per domain of ``--fd-samples`` (default 1000) images per domain drawn from the
   class prompts, an equal number per class, at ``--guidance``, with ``evaluate_samples(domain, samples,
   labels=…)``: FD ± bootstrap s.e., precision, recall, class accuracy, and the floor (training images
   against the test split at the same n). The images of part 1 at that guidance are reused (more are drawn
   when part 1 drew fewer per class).

Each part prints one line when it finishes (with its seconds and the denoiser evaluations it cost: latents ×
network calls, CFG counting two) — on stderr with ``--json``, which prints one JSON object on stdout.
``--results FILE.md`` writes the tables with the exact command and the date (rewritten after every part).

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_prompt.py --guidances 1,2,3,5 \\
        --results benchmarks/results_prompt.md --json > prompt.json
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_prompt.py --model /tmp/gt1 --n 2 --m 1 \\
        --zeroshot-images 4 --samples 2 --fd-samples 40 --warm-repeats 2 --cold-repeats 1   # smoke run
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
PARTS = ("classes", "paraphrases", "speed", "zeroshot", "fd")
DOMAINS = ("mnist", "fashion-mnist")
SPEED_PROMPT = "a pair of trousers"
SPEED_IMAGES = 16
GOALS = {"classes": 0.95, "paraphrases": 0.80, "warm_s": 2.0, "cold_s": 15.0, "zeroshot": 0.90}

_quiet = False  # --json: the progress lines go to stderr


def log(message: str) -> None:
    print(message, file=sys.stderr if _quiet else sys.stdout, flush=True)


# ---------------------------------------------------------------- small helpers


def binomial(correct: int, n: int) -> dict:
    from kakusan.evaluate.sample_quality import binomial_stderr

    a = correct / n if n else float("nan")
    return {"accuracy": a, "stderr": binomial_stderr(int(correct), int(n)) if n else float("nan"),
            "correct": int(correct), "n": int(n)}


def pct(r: dict | None) -> str:
    return "—" if not r else f"{100 * r['accuracy']:.1f} ± {100 * r['stderr']:.1f} %"


def met(value: float, goal: float, below: bool = False) -> str:
    ok = value <= goal if below else value >= goal
    return "met" if ok else "NOT met"


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine()


def git_version() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=HERE).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=HERE).stdout.strip()
    except OSError:  # pragma: no cover
        return "?"
    return sha + (" (uncommitted changes)" if dirty else "")


def command_line() -> str:
    python = sys.executable
    try:
        rel = os.path.relpath(python)
        python = rel if not rel.startswith("..") else python
    except ValueError:  # pragma: no cover - another drive
        pass
    return f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '')} " + shlex.join([python, *sys.argv])


class Bench:
    """The model, the metric nets, the options, and the class images drawn so far (reused across parts)."""

    def __init__(self, args: argparse.Namespace):
        from kakusan.commands.generate import load_prompt_model, shipped_model_dir
        from kakusan.diffusion.samplers import nfe
        from kakusan.runtime import pick_device

        self.args = args
        self.device = pick_device(args.device)
        t0 = time.perf_counter()
        self.model = load_prompt_model(args.model, str(self.device))
        self.model_source = args.model or f"shipped ({shipped_model_dir()})"
        self.load_s = time.perf_counter() - t0
        self.nfe = nfe(args.sampler, args.steps, self.model.diffusion.schedule)
        self.gflop = self.model.gflop_per_example()
        self.params = sum(p.numel() for p in self.model.diffusion.parameters())
        self._nets: dict = {}
        self._class_images: dict[float, torch.Tensor] = {}  # guidance → (20, k, 28, 28)
        self._conds: dict[tuple, object] = {}
        self.calls = 0  # denoiser evaluations of one latent (a CFG step counts two)

    # -- classifying ----------------------------------------------------------------------------------

    def net(self, domain: str):
        from kakusan.evaluate.metric_net import get_metric_net

        if domain not in self._nets:
            self._nets[domain] = get_metric_net(domain, progress=not self.args.no_progress)
        return self._nets[domain]

    def predict(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The metric net's class (0..19) of each image, by the net of its intended class's domain."""
        from kakusan.evaluate.metric_net import embed

        pred = torch.empty(len(labels), dtype=torch.long)
        for offset, domain in ((0, "mnist"), (10, "fashion-mnist")):
            rows = ((labels >= offset) & (labels < offset + 10)).nonzero().flatten()
            if len(rows):
                pred[rows] = embed(self.net(domain), images[rows].cpu())[1].argmax(1) + offset
        return pred

    # -- drawing --------------------------------------------------------------------------------------

    def seed_for(self, *parts) -> int:
        return zlib.crc32(json.dumps([self.args.seed, *parts]).encode())

    def cond(self, prompts: tuple[str, ...]):
        if prompts not in self._conds:
            self._conds[prompts] = self.model.encode_text(list(prompts))
        return self._conds[prompts]

    def draw(self, prompts: list[str], k: int, guidance: float, tag: str, desc: str) -> torch.Tensor:
        """(len(prompts), k, 28, 28): k images of each prompt, ``--batch`` images per sampler call."""
        from tqdm.auto import tqdm

        cond = self.cond(tuple(prompts))
        index = torch.arange(len(prompts)).repeat_interleave(k)
        out = []
        batch = self.args.batch
        with tqdm(total=len(index), desc=desc, unit="img", disable=self.args.no_progress, leave=False,
                  file=sys.stderr) as bar:
            for j in range(0, len(index), batch):
                idx = index[j:j + batch]
                images = self.model.generate(cond.take(idx.to(self.device)), n=len(idx),
                                             generator=self.seed_for(tag, guidance, j), sampler=self.args.sampler,
                                             steps=self.args.steps, guidance=guidance)
                out.append(images.cpu())
                self.calls += len(idx) * self.nfe * (1 if guidance == 1.0 else 2)
                bar.update(len(idx))
        return torch.cat(out).reshape(len(prompts), k, *out[0].shape[1:])

    def class_images(self, guidance: float, k: int) -> torch.Tensor:
        """(20, k, 28, 28) images of the 20 class prompts at ``guidance``; images drawn before are reused and only
        the missing ones drawn."""
        from kakusan.data.captions import N_CLASSES, class_prompt

        have = self._class_images.get(guidance)
        n_have = 0 if have is None else have.shape[1]
        if k > n_have:
            prompts = [class_prompt(c) for c in range(N_CLASSES)]
            more = self.draw(prompts, k - n_have, guidance, f"classes+{n_have}",
                             f"class prompts, w={guidance:g}")
            self._class_images[guidance] = more if have is None else torch.cat([have, more], 1)
        return self._class_images[guidance][:, :k]


# ---------------------------------------------------------------- the parts


def part_classes(b: Bench) -> dict:
    from kakusan.data.captions import N_CLASSES, class_prompt

    args = b.args
    guidances = list(dict.fromkeys([args.guidance, *args.guidances]))
    sweep, main = [], None
    for g in guidances:
        images = b.class_images(g, args.n)  # (20, n, 28, 28)
        labels = torch.arange(N_CLASSES).repeat_interleave(args.n)
        pred = b.predict(images.reshape(-1, *images.shape[2:]), labels).reshape(N_CLASSES, args.n)
        hit = pred == torch.arange(N_CLASSES)[:, None]
        row = {"guidance": g}
        for d, domain in enumerate(DOMAINS):
            row[domain] = binomial(int(hit[10 * d:10 * d + 10].sum()), 10 * args.n)
        sweep.append(row)
        if g == args.guidance:
            per_class = []
            for c in range(N_CLASSES):
                wrong = pred[c][pred[c] != c]
                confused = int(torch.mode(wrong).values) if len(wrong) else None
                per_class.append({"class": c, "prompt": class_prompt(c), **binomial(int(hit[c].sum()), args.n),
                                  "confused_with": confused,
                                  "confused_prompt": None if confused is None else class_prompt(confused)})
            main = {"guidance": g, "domains": {d: row[d] for d in DOMAINS}, "per_class": per_class}
    domains = main["domains"]
    summary = "; ".join(f"{d} {pct(domains[d])} ({met(domains[d]['accuracy'], GOALS['classes'])})" for d in DOMAINS)
    if len(sweep) > 1:
        summary += "; sweep " + ", ".join(f"w={r['guidance']:g}: " + "/".join(f"{100 * r[d]['accuracy']:.1f}"
                                                                            for d in DOMAINS) for r in sweep)
    return {**main, "n_per_class": args.n, "goal": GOALS["classes"], "sweep": sweep, "summary": summary}


def part_paraphrases(b: Bench) -> dict:
    from kakusan.data.captions import N_CLASSES, captions

    args = b.args
    prompts, classes = [], []
    for c in range(N_CLASSES):
        for p in captions(c, "held-out"):
            prompts.append(p)
            classes.append(c)
    labels = torch.tensor(classes)
    images = b.draw(prompts, args.m, args.guidance, "paraphrases", "held-out paraphrases")
    flat_labels = labels.repeat_interleave(args.m)
    pred = b.predict(images.reshape(-1, *images.shape[2:]), flat_labels).reshape(len(prompts), args.m)
    hit = pred == labels[:, None]
    per_prompt = [{"prompt": p, "class": c, **binomial(int(hit[i].sum()), args.m)}
                  for i, (p, c) in enumerate(zip(prompts, classes))]
    domains = {}
    for d, domain in enumerate(DOMAINS):
        rows = (labels // 10) == d
        domains[domain] = binomial(int(hit[rows].sum()), int(rows.sum()) * args.m)
    summary = "; ".join(f"{d} {pct(domains[d])} ({met(domains[d]['accuracy'], GOALS['paraphrases'])})"
                        for d in DOMAINS) + f"; {len(prompts)} prompts × {args.m}"
    return {"guidance": args.guidance, "m_per_prompt": args.m, "n_prompts": len(prompts), "domains": domains,
            "per_prompt": per_prompt, "goal": GOALS["paraphrases"], "summary": summary}


def part_speed(b: Bench) -> dict:
    args = b.args
    model = b.model

    def one() -> float:
        t0 = time.perf_counter()
        model.generate(SPEED_PROMPT, n=SPEED_IMAGES, generator=args.seed, sampler=args.sampler, steps=args.steps,
                       guidance=args.guidance)
        if b.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    t0 = time.perf_counter()
    model.encode_text(SPEED_PROMPT)  # loads the text encoder
    encoder_load_s = time.perf_counter() - t0
    warmup_s = one()
    warm = [one() for _ in range(args.warm_repeats)]
    b.calls += (1 + args.warm_repeats) * SPEED_IMAGES * b.nfe * (1 if args.guidance == 1.0 else 2)

    exe = Path(sys.executable).parent / "kakusan"
    base = [str(exe)] if exe.exists() else [sys.executable, "-m", "kakusan"]
    cold, reported, commands = [], [], []
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    with tempfile.TemporaryDirectory(prefix="bench-prompt-") as tmp:
        for i in range(args.cold_repeats):
            out = Path(tmp) / f"cold-{i}.png"
            cmd = [*base, "generate", SPEED_PROMPT, "-n", str(SPEED_IMAGES), "--out", str(out)]
            if args.model:
                cmd += ["--model", args.model]
            if args.device != "cpu":
                cmd += ["--device", args.device]
            commands.append(shlex.join(cmd).replace(str(out), "TMP.png"))
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            seconds = time.perf_counter() - t0
            if proc.returncode != 0 or not out.exists():
                raise RuntimeError(f"`{shlex.join(cmd)}` failed (exit {proc.returncode}): "
                                   f"{(proc.stderr or proc.stdout).strip()[-500:]}")
            cold.append(seconds)
            m = re.search(r" in ([0-9.]+) s", proc.stdout)
            reported.append(float(m.group(1)) if m else None)
    b.calls += args.cold_repeats * SPEED_IMAGES * b.nfe * 2
    warm_med, cold_med = statistics.median(warm), statistics.median(cold)
    result = {"prompt": SPEED_PROMPT, "images": SPEED_IMAGES, "steps": args.steps, "sampler": args.sampler,
              "guidance": args.guidance, "warm_s": warm, "warm_median_s": warm_med, "warm_first_call_s": warmup_s,
              "text_encoder_load_s": encoder_load_s, "model_load_s": b.load_s, "cold_s": cold,
              "cold_median_s": cold_med, "cold_reported_by_cli_s": reported, "cold_command": commands[0],
              "threads": torch.get_num_threads(), "goal_warm_s": GOALS["warm_s"], "goal_cold_s": GOALS["cold_s"]}
    result["summary"] = (f"warm {warm_med:.2f} s (median of {len(warm)}; {met(warm_med, GOALS['warm_s'], True)}), "
                         f"cold {cold_med:.1f} s (median of {len(cold)}; {met(cold_med, GOALS['cold_s'], True)}), "
                         f"{torch.get_num_threads()} thread(s)")
    return result


def part_zeroshot(b: Bench) -> dict:
    from tqdm.auto import tqdm

    from kakusan.data.captions import N_CLASSES, class_prompt
    from kakusan.latent.classify import prompt_scores
    from kakusan.latent.data import joint_images

    args = b.args
    x, y = joint_images("test")
    prompts = [class_prompt(c) for c in range(N_CLASSES)]
    cond = b.cond(tuple(prompts))
    chunk = max(1, args.zeroshot_chunk)
    per_domain, confusion, timing = {}, np.zeros((N_CLASSES, N_CLASSES), dtype=np.int64), {}
    for d, domain in enumerate(DOMAINS):
        rows = ((y // 10) == d).nonzero().flatten()[:args.zeroshot_images]
        images, labels = x[rows], y[rows]
        t0 = time.perf_counter()
        scores = []
        for j in tqdm(range(0, len(rows), chunk), desc=f"zero-shot {domain}", disable=args.no_progress,
                      leave=False, file=sys.stderr):
            scores.append(prompt_scores(b.model, images[j:j + chunk].to(b.device), cond, samples=args.samples,
                                        generator=b.seed_for("zeroshot", domain, j)))
        scores = torch.cat(scores)
        timing[domain] = time.perf_counter() - t0
        b.calls += len(rows) * N_CLASSES * args.samples
        pred20 = scores.argmax(1)
        own = scores[:, 10 * d:10 * d + 10].argmax(1) + 10 * d  # the 10-way classifier of the image's domain
        np.add.at(confusion, (labels.numpy(), pred20.numpy()), 1)
        per_domain[domain] = {"ten_way": binomial(int((own == labels).sum()), len(rows)),
                              "twenty_way": binomial(int((pred20 == labels).sum()), len(rows)),
                              "wrong_domain": int(((pred20 // 10) != d).sum()), "seconds": timing[domain],
                              "s_per_image_prompt": timing[domain] / max(1, len(rows) * N_CLASSES)}
    out = {"images_per_domain": args.zeroshot_images, "samples": args.samples, "prompts": prompts,
           "domains": per_domain, "confusion": confusion.tolist(), "seconds": sum(timing.values()),
           "goal": GOALS["zeroshot"]}
    prefix = args.confusion or (str(Path(args.results).with_suffix("")) + "_confusion" if args.results else None)
    if prefix:
        np.save(prefix + ".npy", confusion)
        Path(prefix + ".json").write_text(json.dumps(
            {"rows": "true class", "columns": "predicted class (argmax over the 20 class prompts)",
             "classes": prompts, "matrix": confusion.tolist(), "images_per_domain": args.zeroshot_images,
             "samples": args.samples, "model": b.model_source, "seed": args.seed}, indent=1) + "\n")
        out["confusion_files"] = [prefix + ".npy", prefix + ".json"]
    mn = per_domain["mnist"]["ten_way"]
    out["summary"] = (f"MNIST 10-way {pct(mn)} ({met(mn['accuracy'], GOALS['zeroshot'])}); 20-way " + ", ".join(
        f"{d} {pct(per_domain[d]['twenty_way'])}" for d in DOMAINS)
        + f"; Fashion 10-way {pct(per_domain['fashion-mnist']['ten_way'])}; S={args.samples}")
    return out


def part_fd(b: Bench) -> dict:
    from kakusan.evaluate.metric_net import evaluate_samples

    args = b.args
    k = args.fd_samples // 10
    if k * 10 != args.fd_samples:
        log(f"(--fd-samples {args.fd_samples} is not a multiple of 10: {10 * k} per domain, {k} per class)")
    images = b.class_images(args.guidance, k)
    out = {"guidance": args.guidance, "per_class": k, "domains": {}}
    for d, domain in enumerate(DOMAINS):
        samples = images[10 * d:10 * d + 10].reshape(-1, *images.shape[2:])
        labels = torch.arange(10).repeat_interleave(k)
        r = evaluate_samples(domain, samples, labels=labels, seed=args.seed, progress=not args.no_progress)
        out["domains"][domain] = r
    out["summary"] = "; ".join(
        f"{d} FD {r['fd']:.3g} ± {r['fd_stderr']:.2g} (floor {r['floor']['fd']:.3g}), P/R {r['precision']:.2f}/"
        f"{r['recall']:.2f}, class acc {100 * r['class_accuracy']:.1f} %" for d, r in out["domains"].items())
    return out


def figures(b: Bench, results: dict, folder: Path) -> list[Path]:
    """The chapter's figures (docs/prompt-to-image.md) from this model and this run's measurements: a prompt grid,
    a guidance sweep, SDEdit and inpainting of test images, and — when those parts ran — the held-out paraphrase
    table and the zero-shot confusion matrix."""
    from kakusan.data.captions import N_CLASSES, SYNONYMS
    from kakusan.latent.data import joint_images
    from kakusan.latent.edit import edit
    from kakusan.report import prompt as rp

    folder.mkdir(parents=True, exist_ok=True)
    m, seed = b.model, b.args.seed
    out = [rp.prompt_grid(m, ["a handwritten 7", "the digit three", "a photo of an ankle boot", "a pair of trousers",
                              "someone wrote a numeral five by hand", "a catalogue picture showing a knitted sweater"],
                          folder / "prompt_grid.png", n_per_prompt=8, seed=seed),
           rp.guidance_sweep(m, ["a handwritten 2", "a photo of a dress"], folder / "prompt_guidance.png", seed=seed)]
    x, y = joint_images("test")
    rows = torch.cat([(y == 3).nonzero()[:2, 0], (y == 17).nonzero()[:2, 0]])  # two 3s, two sneakers
    images = x[rows].to(b.device)
    mask = torch.zeros(28, 28)
    mask[:, 14:] = 1  # repaint the right half
    sd = edit(m, images, ["a handwritten 8", "a handwritten 8", "an ankle boot", "an ankle boot"], strength=0.6,
              generator=seed)
    inp = edit(m, images, ["a handwritten 8", "a handwritten 8", "an ankle boot", "an ankle boot"], strength=1.0,
               mask=mask, generator=seed)
    out.append(rp.edit_figure(images.cpu(), {"SDEdit 0.6 → '8' / 'ankle boot'": sd.cpu(),
                                             "inpaint right half": inp.cpu()}, folder / "prompt_edit.png",
                              mask=mask))
    if "paraphrases" in results:
        names = [SYNONYMS[c][0] for c in range(N_CLASSES)]
        table = [(r["prompt"], names[r["class"]], r["accuracy"], r["n"]) for r in results["paraphrases"]["per_prompt"]]
        out.append(rp.paraphrase_table(table, folder / "prompt_paraphrases.png",
                                       title=f"held-out paraphrases, {b.args.m} images each, guidance {b.args.guidance:g}"))
    if "zeroshot" in results:
        z = results["zeroshot"]
        out.append(rp.confusion_figure(np.asarray(z["confusion"]), None, folder / "prompt_confusion.png",
                                       f"diffusion classifier, 20 class prompts, {z['samples']} draws, "
                                       f"{z['images_per_domain']} test images per domain"))
    return out


RUNNERS = {"classes": part_classes, "paraphrases": part_paraphrases, "speed": part_speed,
           "zeroshot": part_zeroshot, "fd": part_fd}


# ---------------------------------------------------------------- the report


def markdown(env: dict, results: dict) -> str:
    end = "" if env.get("load_average_end") is None else f", {env['load_average_end']:.1f} at the end"
    L = [f"# Prompt → image: `{env['model']}`", "",
         f"`{env['command']}`", "",
         f"{env['date']}; git {env['git']}; {env['cpu']}, {env['cores']} core(s), {env['threads']} torch thread(s); "
         f"torch {env['torch']}, python {env['python']}; load average {env['load_average_start']:.1f} at the start"
         f"{end}. Denoiser: {env['params']:,} parameters, {env['gflop_per_latent']:.4f} GFLOP per latent per call; "
         f"{env['sampler']}, {env['steps']} steps ({env['nfe']} calls, ×2 with guidance), seed {env['seed']}.", "",
         "| part | seconds | denoiser calls (latents) | result |", "|---|---|---|---|"]
    for name in PARTS:
        if name in results:
            r = results[name]
            L.append(f"| {name} | {r['seconds']:.0f} | {r['denoiser_calls']:,} | {r['summary']} |")
    if "classes" in results:
        r = results["classes"]
        L += ["", f"## Class-name prompts: {r['n_per_class']} images per class, guidance {r['guidance']:g} "
                  f"(goal ≥ {100 * r['goal']:.0f} % per domain)", "",
              "| domain | accuracy ± s.e. | n | goal |", "|---|---|---|---|"]
        L += [f"| {d} | {pct(v)} | {v['n']} | {met(v['accuracy'], r['goal'])} |" for d, v in r["domains"].items()]
        L += ["", "| class | prompt | accuracy | most often taken for |", "|---|---|---|---|"]
        L += [f"| {c['class']} | {c['prompt']} | {100 * c['accuracy']:.0f} % | "
              f"{c['confused_prompt'] or '—'} |" for c in r["per_class"]]
        if len(r["sweep"]) > 1:
            L += ["", "Guidance sweep (accuracy ± s.e.):", "", "| guidance | " + " | ".join(DOMAINS) + " |",
                  "|---|" + "---|" * len(DOMAINS)]
            L += [f"| {s['guidance']:g} | " + " | ".join(pct(s[d]) for d in DOMAINS) + " |"
                  for s in sorted(r["sweep"], key=lambda s: s["guidance"])]
    if "paraphrases" in results:
        r = results["paraphrases"]
        L += ["", f"## Held-out paraphrases: {r['n_prompts']} prompts × {r['m_per_prompt']} images, guidance "
                  f"{r['guidance']:g} (goal ≥ {100 * r['goal']:.0f} % per domain)", "",
              "| domain | accuracy ± s.e. | n | goal |", "|---|---|---|---|"]
        L += [f"| {d} | {pct(v)} | {v['n']} | {met(v['accuracy'], r['goal'])} |" for d, v in r["domains"].items()]
        L += ["", "| prompt | class | accuracy |", "|---|---|---|"]
        L += [f"| {p['prompt']} | {p['class']} | {100 * p['accuracy']:.0f} % |" for p in r["per_prompt"]]
    if "speed" in results:
        r = results["speed"]
        L += ["", f"## Speed: {r['images']} images of \"{r['prompt']}\", {r['sampler']} {r['steps']} steps, guidance "
                  f"{r['guidance']:g}, {r['threads']} thread(s)", "",
              "| | median s | all (s) | goal |", "|---|---|---|---|",
              f"| warm: `model.generate` (model and text encoder loaded) | {r['warm_median_s']:.2f} | "
              f"{', '.join(f'{v:.2f}' for v in r['warm_s'])} | ≤ {r['goal_warm_s']:g} s: "
              f"{met(r['warm_median_s'], r['goal_warm_s'], True)} |",
              f"| cold: `{r['cold_command']}` (wall, end to end) | {r['cold_median_s']:.1f} | "
              f"{', '.join(f'{v:.1f}' for v in r['cold_s'])} | ≤ {r['goal_cold_s']:g} s: "
              f"{met(r['cold_median_s'], r['goal_cold_s'], True)} |", "",
              f"First warm call (untimed) {r['warm_first_call_s']:.2f} s; loading the model {r['model_load_s']:.2f} s, "
              f"the text encoder {r['text_encoder_load_s']:.2f} s; the CLI's own reported times "
              f"{', '.join('—' if v is None else f'{v:.1f}' for v in r['cold_reported_by_cli_s'])} s."]
    if "zeroshot" in results:
        r = results["zeroshot"]
        L += ["", f"## Zero-shot classification by the diffusion ELBO: first {r['images_per_domain']} test images "
                  f"per domain, {r['samples']} (t, ε) draws each (goal ≥ {100 * r['goal']:.0f} % 10-way on MNIST)",
              "",
              "| test images | 10-way (own domain's prompts) | 20-way | put in the wrong domain | seconds | "
              "s per image·prompt |", "|---|---|---|---|---|---|"]
        L += [f"| {d} | {pct(v['ten_way'])} | {pct(v['twenty_way'])} | {v['wrong_domain']} | {v['seconds']:.0f} | "
              f"{v['s_per_image_prompt']:.3f} |" for d, v in r["domains"].items()]
        if r.get("confusion_files"):
            L += ["", f"Confusion matrix (20-way): {', '.join(f'`{p}`' for p in r['confusion_files'])}."]
    if "fd" in results:
        r = results["fd"]
        L += ["", f"## FD per domain: class prompts, {r['per_class']} images per class, guidance {r['guidance']:g}", "",
              "| domain | n | FD ± s.e. | floor FD ± s.e. (train vs test) | precision | recall | floor P / R | "
              "class accuracy |", "|---|---|---|---|---|---|---|---|"]
        for d, v in r["domains"].items():
            f = v["floor"]
            L.append(f"| {d} | {v['n_samples']} | {v['fd']:.3g} ± {v['fd_stderr']:.2g} | {f['fd']:.3g} ± "
                     f"{f['fd_stderr']:.2g} | {v['precision']:.3f} | {v['recall']:.3f} | {f['precision']:.3f} / "
                     f"{f['recall']:.3f} | {100 * v['class_accuracy']:.1f} ± "
                     f"{100 * v['class_accuracy_stderr']:.1f} % |")
    return "\n".join(L) + "\n"


# ---------------------------------------------------------------- driver


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default=None, metavar="RUN", help="a run of `kakusan generate train` (default: shipped)")
    p.add_argument("--parts", default=",".join(PARTS), help="comma-separated, from " + ", ".join(PARTS))
    p.add_argument("--n", type=int, default=100, help="images per class prompt (classes)")
    p.add_argument("--m", type=int, default=20, help="images per held-out paraphrase (paraphrases)")
    p.add_argument("--guidance", type=float, default=3.0, help="guidance scale of every part")
    p.add_argument("--guidances", default="", help="extra guidance scales for the class-prompt sweep, e.g. 1,2,3,5")
    p.add_argument("--sampler", default="dpm++2m")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=250, help="images per sampler call")
    p.add_argument("--warm-repeats", type=int, default=5, help="timed warm calls (speed)")
    p.add_argument("--cold-repeats", type=int, default=3, help="timed `kakusan generate` runs (speed)")
    p.add_argument("--zeroshot-images", type=int, default=200, help="test images per domain (zeroshot)")
    p.add_argument("--samples", type=int, default=32, help="(t, ε) draws per image (zeroshot)")
    p.add_argument("--zeroshot-chunk", type=int, default=10, help="images per prompt_scores call")
    p.add_argument("--confusion", default=None, metavar="PREFIX",
                   help="write the zero-shot confusion matrix to PREFIX.npy and PREFIX.json (default: beside "
                        "--results)")
    p.add_argument("--fd-samples", type=int, default=1000, help="images per domain (fd), equal per class")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: the cores this process may use)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout (progress lines on stderr)")
    p.add_argument("--results", default=None, metavar="FILE.md", help="write the markdown tables here")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--figures", default=None, metavar="DIR",
                   help="also draw the chapter's figures into DIR (docs/figures for the docs page)")
    args = p.parse_args(argv)
    args.parts = [s.strip() for s in args.parts.split(",") if s.strip()]
    unknown = sorted(set(args.parts) - set(PARTS))
    if unknown or not args.parts:
        p.error(f"unknown --parts {unknown}: choose from {', '.join(PARTS)}")
    try:
        args.guidances = [float(s) for s in args.guidances.split(",") if s.strip()]
    except ValueError:
        p.error(f"--guidances takes numbers separated by commas, got {args.guidances!r}")
    for name in ("n", "m", "steps", "batch", "warm_repeats", "cold_repeats", "zeroshot_images", "samples"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if "fd" in args.parts and args.fd_samples < 40:
        p.error("--fd-samples must be at least 40 (4 per class: the k-NN metrics need more than 3 samples)")
    return args


def main(argv: list[str] | None = None) -> int:
    global _quiet
    args = parse_args(argv)
    _quiet = args.json
    from kakusan.runtime import set_threads

    threads = set_threads(args.threads)
    t_start = time.perf_counter()
    bench = Bench(args)
    env = {"command": command_line(), "model": bench.model_source, "git": git_version(),
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "cpu": cpu_model(),
           "platform": platform.platform(), "cores": len(os.sched_getaffinity(0)), "threads": threads,
           "torch": torch.__version__, "python": platform.python_version(), "device": str(bench.device),
           "load_average_start": os.getloadavg()[0], "params": bench.params, "gflop_per_latent": bench.gflop,
           "sampler": args.sampler, "steps": args.steps, "nfe": bench.nfe, "seed": args.seed,
           "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}
    log(f"{env['model']}: {env['params']:,} denoiser parameters, {env['gflop_per_latent']:.4f} GFLOP per latent per "
        f"call; {env['cpu']}, {threads} thread(s), load {env['load_average_start']:.1f}; git {env['git']}; parts "
        f"{', '.join(args.parts)}")
    results: dict = {}
    for name in PARTS:
        if name not in args.parts:
            continue
        calls0, load0, t0 = bench.calls, os.getloadavg()[0], time.perf_counter()
        r = RUNNERS[name](bench)
        r.update(seconds=time.perf_counter() - t0, denoiser_calls=bench.calls - calls0, load_average=load0)
        results[name] = r
        log(f"{name}: {r['summary']} — {r['seconds']:.1f} s, {r['denoiser_calls']:,} denoiser calls "
            f"(load {load0:.1f})")
        if args.results:
            Path(args.results).write_text(markdown(env, results))
    if args.figures:
        for path in figures(bench, results, Path(args.figures)):
            log(f"figure: {path}")
    env["load_average_end"] = os.getloadavg()[0]
    env["seconds"] = time.perf_counter() - t_start
    if args.results:
        Path(args.results).write_text(markdown(env, results))
        log(f"wrote {args.results}")
    if args.json:
        print(json.dumps({"environment": env, "args": vars(args), "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
