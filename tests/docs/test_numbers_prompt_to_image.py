"""The numbers docs/prompt-to-image.md quotes outside its exercises, each found in its source (see page_numbers).

They are measurements of the shipped model (an hour of training; ~10 minutes of ``benchmarks/bench_prompt.py``)
and of the pixel-space diffusion models, so none is recomputed: they are cited from the results files and from
the ``metrics.json`` and ``config.json`` that ``make model`` writes beside the shipped weights. The run's
drawing times, threads and load are on docs/benchmarks.md (test_numbers_benchmarks.py).
"""

import math
import re

from page_numbers import BENCHMARKS, ROOT, cite, cite_json, page

PAGE = "prompt-to-image"
PROMPT = "results_prompt.md"
MNIST = "results_diffusion_mnist.md"
SHIPPED = "src/kakusan/models/prompt"


def _binomial_se_percent(p: float, n: int) -> float:
    return 100 * math.sqrt(p * (1 - p) / n)


def test_the_run_of_bench_prompt():
    cite(PAGE, PROMPT, "Denoiser: 2,736,452 parameters", "0.089")


def test_the_goals_table():
    cite(PAGE, PROMPT, "| mnist | 99.8 ± 0.1 % | 1000 |", "99.8", "0.1", "1,000")
    cite(PAGE, PROMPT, "| fashion-mnist | 96.4 ± 0.6 % | 1000 |", "96.4", "0.6", "1,000")
    cite(PAGE, PROMPT, "| mnist | 99.9 ± 0.1 % | 1200 |", "99.9", "0.1")
    cite(PAGE, PROMPT, "| fashion-mnist | 92.4 ± 0.8 % | 1200 |", "92.4", "0.8")
    cite(PAGE, PROMPT, "## Held-out paraphrases: 120 prompts × 20 images", "20")
    assert "(60 prompts × 20 images)" in page(PAGE) and 60 * 20 == 1200
    cite(PAGE, PROMPT, "| zeroshot |", "97.0", "1.2", "86.5", "2.4", "32")
    cite(PAGE, PROMPT, "## Zero-shot classification by the diffusion ELBO", "200")
    cite(PAGE, PROMPT, "| mnist | 500 | 45.5 ± 4.7 |", "500", "45.5", "4.7", "11.5")
    cite(PAGE, PROMPT, "| fashion-mnist | 500 | 32.6 ± 2.9 |", "32.6", "2.9", "7.6")


def test_the_autoencoder_rows_from_metrics_json():
    metrics = f"{SHIPPED}/metrics.json"
    cite_json(PAGE, metrics, "psnr_db.mnist", "29.8")
    cite_json(PAGE, metrics, "psnr_db.fashion-mnist", "25.1")
    cite_json(PAGE, metrics, "recon_accuracy.mnist", "98.8", scale=0.01)
    cite_json(PAGE, metrics, "recon_accuracy.fashion-mnist", "89.1", scale=0.01)
    cite_json(PAGE, metrics, "original_accuracy.mnist", "99.1", scale=0.01)
    cite_json(PAGE, metrics, "original_accuracy.fashion-mnist", "91.7", scale=0.01)


def test_the_guidance_sweep():
    for row, numbers in (("| 1 | 89.2 ± 1.0 % |", ("89.2", "1.0", "80.6", "1.3")),
                         ("| 2 | 99.5 ± 0.2 % |", ("99.5", "0.2", "94.6", "0.7")),
                         ("| 3 | 99.8 ± 0.1 % |", ("99.8", "0.1", "96.4", "0.6")),
                         ("| 5 | 100.0 ± 0.0 % |", ("100.0", "98.6", "0.4"))):
        cite(PAGE, PROMPT, row, *numbers)
    assert "100.0 % (1,000 of 1,000)" in page(PAGE)


def test_the_shirt_and_its_paraphrases():
    cite(PAGE, PROMPT, "| 16 | a photo of a shirt | 74 % |", "74")
    assert "74 ± 4 % of the time (100 images)" in page(PAGE) and f"{_binomial_se_percent(0.74, 100):.0f}" == "4"
    cite(PAGE, PROMPT, "## Class-name prompts: 100 images per class", "100")
    # "the paraphrases of 'shirt' are the weakest held-out prompts": the lowest-scoring paraphrases are class 16's.
    section = (BENCHMARKS / PROMPT).read_text(encoding="utf-8").split("## Held-out paraphrases")[1].split("\n## ")[0]
    rows = [(int(a), int(c)) for c, a in re.findall(r"^\| [^|]+ \| (\d+) \| (\d+) % \|$", section, re.M)]
    assert len(rows) == 120
    shirts = [a for a, c in rows if c == 16]
    assert max(shirts) < min(a for a, c in rows if c != 16)


def test_the_pixel_space_unets_it_is_compared_with():
    cite(PAGE, MNIST, "| dpm++2m 20 |", "87.8", scale=0.01)
    cite(PAGE, MNIST, "| dpm++2m 20 |", "29.3")
    cite(PAGE, MNIST, "| dpm++2m 20, w=3 |", "100", scale=0.01)
    cite(PAGE, MNIST, "| dpm++2m 20, w=3 |", "63", "10")
    cite(PAGE, "results_diffusion_fashion.md", "| dpm++2m 20, w=3 |", "33.1", "3.2")
    cite(PAGE, "results_diffusion.md", "For scale: the default MNIST model", "0.20")
    assert "1.6 combined standard errors below" in page(PAGE)
    assert f"{(63 - 45.5) / math.hypot(10, 4.7):.1f}" == "1.6"


def test_how_the_shipped_model_was_made():
    metrics, config = f"{SHIPPED}/metrics.json", f"{SHIPPED}/config.json"
    cite_json(PAGE, metrics, "autoencoder.train_seconds", "750")
    cite_json(PAGE, metrics, "train_seconds", "3,359")
    cite_json(PAGE, metrics, "steps", "5,622")
    cite_json(PAGE, config, "autoencoder.epochs", "4")
    cite_json(PAGE, config, "train.epochs", "6")
    assert "2,609 s of" in page(PAGE) and round(3359.06 - 750.08) == 2609   # the UNet's share of train_seconds
    size_mb = (ROOT / SHIPPED / "model.safetensors").stat().st_size / 1e6
    assert "`model.safetensors`, 11.8 MB" in page(PAGE) and f"{size_mb:.1f}" == "11.8"


def test_the_accuracy_error_bar_note():
    """§9 says its accuracies carry the Wald error and what Agresti–Coull prints for 998 of 1,000."""
    from kakusan.evaluate.sample_quality import binomial_stderr

    cite(PAGE, "results_calibration.md", "Accuracies measured before this change", "998", "1,000", "0.2")
    assert f"{100 * binomial_stderr(998, 1000):.1f}" == "0.2"
