"""Tour section: prompt → image — the latent diffusion model shipped with kakusan, drawn from prompts of both domains
(a held-out paraphrase among them), a classifier-free guidance sweep, and the model as its own zero-shot classifier.

The section needs the shipped model (``make model`` writes it to ``src/kakusan/models/prompt``) and the text
encoder's package; without either it says so, and how to get it, in a paragraph instead of failing.
"""

from __future__ import annotations

import html
import statistics
import time

import torch

from kakusan.tour import Section, TourContext

INTRO = (
    "The last chapter draws 28×28 images from a sentence. A <em>latent diffusion</em> model is a VAE whose prior is "
    "a diffusion model: an autoencoder maps each image to a 4×7×7 latent z (trained first, with a weak KL so that "
    "it reconstructs sharply), and a UNet learns the diffusion model of p(z|c) in that small space, where every "
    "step is cheap; the ELBO log p(x|c) ≥ E<sub>q</sub>[log p(x|z)] − KL(q(z|x) ‖ p(z|c)) joins the two. The "
    "condition c is the prompt as a frozen sentence encoder (MiniLM) reads it: the UNet cross-attends to its token "
    "states. One network is trained on MNIST's digits and Fashion-MNIST's clothes together, with captions drawn "
    "anew from templates × synonyms and the prompt left empty 10 % of the time.")
GUIDANCE = (
    "<em>Classifier-free guidance</em> samples from p(x|c)<sup>w</sup> p(x)<sup>1−w</sup> ∝ p(x) "
    "p(c|x)<sup>w</sup>: its noise prediction is ε̂(x, ∅) + w (ε̂(x, c) − ε̂(x, ∅)), the empty prompt's "
    "prediction pushed w times the way the prompt moves it. w = 0 is the unconditional model, w = 1 the conditional "
    "one; larger w concentrates the samples where the model's implicit classifier p(c|x) is sure — clearer "
    "images of the class, less alike the data's variety. In the sweep every column starts from the same noise.")
CLASSIFIER = (
    "Read backwards, the same network classifies (Li et al. 2023): for an image x and each of the 20 class prompts "
    "c<sub>k</sub>, the conditional diffusion loss E<sub>t,ε</sub>‖ε − ε̂(z<sub>t</sub>, t, c<sub>k</sub>)‖² "
    "estimates −log p(x|c<sub>k</sub>) up to constants, with the same (t, ε) draws for every prompt, and the "
    "prompt of smallest loss is the guess. Here it ranks the prompts for images the model drew itself.")
MISSING = (
    "The shipped prompt → image model could not be loaded, so this chapter shows no pictures: <code>{}</code>. "
    "Train and install it with <code>make model</code> (about an hour on a CPU; it writes "
    "<code>src/kakusan/models/prompt</code>), or train your own with <code>kakusan generate train</code>; "
    "then run <code>kakusan tour --chapters prompt</code>.")


def _prompts():
    """The grid's prompts: class names of both domains in training phrasings, and two held-out paraphrases (a
    template and a synonym never seen in training)."""
    from kakusan.data.captions import HELD_OUT_SYNONYMS, HELD_OUT_TEMPLATES, fill

    held_out = [fill(HELD_OUT_TEMPLATES["mnist"][0], HELD_OUT_SYNONYMS[5][0]),           # numeral five
                fill(HELD_OUT_TEMPLATES["fashion-mnist"][0], HELD_OUT_SYNONYMS[12][0])]  # knitted sweater
    return ["a handwritten 7", "the digit three", "a photo of an ankle boot", "a pair of trousers"], held_out


def _load():
    """The shipped model, with the text encoder loaded; the seconds loading took."""
    from kakusan.commands.generate import load_prompt_model

    t0 = time.perf_counter()
    model = load_prompt_model(None, "cpu")
    model.encode_text(["a bag"])  # the text encoder: a missing package fails here, with its one-line fix
    return model, time.perf_counter() - t0


def _millions(module) -> float:
    return round(sum(p.numel() for p in module.parameters()) / 1e6, 3)


def section(ctx: TourContext) -> Section:
    from kakusan.errors import KakusanError

    tiny = ctx.size == "tiny"
    seed = int(torch.randint(1 << 30, (1,), generator=ctx.generator))
    sec = Section("Prompt → image: latent diffusion with a text encoder", paragraphs=[INTRO])
    try:
        model, load_seconds = _load()
    except KakusanError as e:
        sec.paragraphs.append(MISSING.format(html.escape(str(e))))
        sec.numbers["shipped model"] = "missing: run make model"
        return sec
    steps = 10 if tiny else 20
    sec.numbers.update({"denoiser: parameters (M)": _millions(model.diffusion),
                        "autoencoder: parameters (M)": _millions(model.autoencoder),
                        "denoiser: GFLOP per latent": round(model.gflop_per_example(), 4),
                        "loading model and text encoder (s)": round(load_seconds, 2)})
    _grid(ctx, sec, model, tiny, steps, seed)
    _sweep(ctx, sec, model, tiny, steps, seed + 1)
    _classifier(ctx, sec, model, tiny, steps, seed + 2)
    _speed(sec, model, tiny, steps, seed + 3)
    return sec


def _grid(ctx: TourContext, sec: Section, model, tiny: bool, steps: int, seed: int) -> None:
    from kakusan.report import prompt as report

    trained, held_out = _prompts()
    n = 4 if tiny else 8
    path = report.prompt_grid(model, trained + held_out, ctx.figure("prompt_grid.png"), n_per_prompt=n, seed=seed,
                              guidance=3.0, steps=steps)
    quoted = " and ".join(f"“{html.escape(p)}”" for p in held_out)
    sec.figures.append((path, f"{n} images per prompt (DPM-Solver++(2M), {steps} steps, guidance w = 3; column j of "
                              f"every row starts from the same z<sub>T</sub>). The last two prompts, {quoted}, are "
                              "held-out paraphrases: their wording never appeared in training, so only the text "
                              "encoder's sense of the words carries them."))


def _sweep(ctx: TourContext, sec: Section, model, tiny: bool, steps: int, seed: int) -> None:
    from kakusan.report import prompt as report

    prompts = ["a handwritten 2"] if tiny else ["a handwritten 2", "a photo of a dress"]
    guidances = (0, 1, 3, 8) if tiny else (0, 1, 2, 3, 5, 8)
    path = report.guidance_sweep(model, prompts, ctx.figure("prompt_guidance.png"), guidances=guidances,
                                 n=4 if tiny else 6, seed=seed, steps=steps)
    sec.paragraphs.append(GUIDANCE)
    sec.figures.append((path, "Guidance w from 0 (unconditional) to 8, the same noise in every column: the images "
                              "sharpen towards the prompt and grow alike (the pixel spread across each cell, under "
                              "it, shrinks)."))


def _classifier(ctx: TourContext, sec: Section, model, tiny: bool, steps: int, seed: int) -> None:
    from kakusan.data.captions import N_CLASSES, class_prompt
    from kakusan.latent.classify import prompt_scores
    from kakusan.report import prompt as report
    from kakusan.runtime import make_generator

    classes = [1, 7, 13, 19] if tiny else list(range(N_CLASSES))
    samples = 8 if tiny else 16
    prompts = [class_prompt(c) for c in range(N_CLASSES)]
    images = model.generate([prompts[c] for c in classes], generator=make_generator(seed), steps=steps, guidance=3.0)
    t0 = time.perf_counter()
    scores = prompt_scores(model, images, prompts, samples=samples, generator=make_generator(seed + 1))
    seconds = time.perf_counter() - t0
    truth = torch.tensor(classes)
    guess = scores.argmax(1)
    accuracy = float((guess == truth).double().mean())
    domain = float(((guess >= 10) == (truth >= 10)).double().mean())
    show = [i for i, c in enumerate(classes) if tiny or c in (0, 4, 8, 11, 15, 19)]
    path = report.ranking_figure(images[show], scores[show], prompts, ctx.figure("prompt_classifier.png"),
                                 truth=truth[show].tolist())
    sec.paragraphs.append(CLASSIFIER)
    sec.figures.append((path, f"Images drawn from class prompts (w = 3) and the three class prompts the diffusion "
                              f"classifier ranks highest ({samples} shared (t, ε) draws): green when the best is the "
                              f"prompt the image was drawn from, red when not. It is right for "
                              f"{int((guess == truth).sum())} of {len(classes)} images."))
    sec.numbers.update({
        f"diffusion classifier: 20-way accuracy on {len(classes)} generated images": round(accuracy, 3),
        "diffusion classifier: right domain (digit or clothing)": round(domain, 3),
        f"diffusion classifier: seconds per image (20 prompts × {samples} draws)": round(seconds / len(classes), 3),
    })


def _speed(sec: Section, model, tiny: bool, steps: int, seed: int) -> None:
    from kakusan.runtime import make_generator

    times = []
    for k in range(1 if tiny else 3):  # warm: the model and the text encoder have run above
        t0 = time.perf_counter()
        model.generate("a handwritten 7", n=16, generator=make_generator(seed + k), steps=steps, guidance=3.0)
        times.append(time.perf_counter() - t0)
    sec.numbers[f"seconds per 16 images (DPM-Solver++(2M), {steps} steps, w = 3, {torch.get_num_threads()} "
                "threads)"] = round(statistics.median(times), 3)
