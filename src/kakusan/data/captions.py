"""Captions for MNIST and Fashion-MNIST trained jointly: the 20 classes of the prompt → image model.

Classes 0–9 are MNIST's digits, 10–19 Fashion-MNIST's clothes (``label + 10``), so a prompt picks the domain as
well as the class. Each class has *synonyms* (the names a caption may use) and each domain *templates* with a
``{}`` slot; a training caption is one template filled with one synonym, drawn anew for every image at every
step, so the model learns the class from many phrasings, not from one string.

A second, *held-out* set of templates and synonyms is never used in training (:data:`HELD_OUT_TEMPLATES`,
:data:`HELD_OUT_SYNONYMS`): generating from these paraphrases tests that the text goes through the text encoder's
meaning rather than a table of words. ``captions(label, split)`` lists every caption of a class in a split;
``training_captions()`` is the flat list of all training captions (its embeddings are computed once and cached)
with the class of each.
"""

from __future__ import annotations

import itertools
import re

import numpy as np

N_CLASSES = 20
DOMAINS = ("mnist", "fashion-mnist")

_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# Per class: the synonyms training captions use.
SYNONYMS: tuple[tuple[str, ...], ...] = (
    *((d, w) for d, w in zip("0123456789", _DIGIT_WORDS)),
    ("t-shirt", "top", "tee"),
    ("pair of trousers", "pair of pants", "trousers"),
    ("pullover", "sweater", "jumper"),
    ("dress", "summer dress", "frock"),
    ("coat", "jacket", "winter coat"),
    ("sandal", "pair of sandals", "open shoe"),
    ("shirt", "button-up shirt", "blouse"),
    ("sneaker", "trainer", "running shoe"),
    ("bag", "handbag", "purse"),
    ("ankle boot", "boot", "short boot"),
)

TEMPLATES: dict[str, tuple[str, ...]] = {
    "mnist": ("a handwritten {}", "the digit {}", "the number {}", "a {}", "{}", "a drawing of the digit {}",
              "handwritten number {}", "an image of the digit {}", "a scanned handwritten {}"),
    "fashion-mnist": ("a {}", "a photo of a {}", "{}", "an image of a {}", "a product photo of a {}",
                      "a grayscale picture of a {}", "a small photo of a {}", "a {} for sale"),
}

# Never used in training: the paraphrase test (tests/latent and benchmarks/bench_prompt.py).
HELD_OUT_SYNONYMS: tuple[tuple[str, ...], ...] = (
    ("numeral zero",), ("numeral one",), ("numeral two",), ("numeral three",), ("numeral four",),
    ("numeral five",), ("numeral six",), ("numeral seven",), ("numeral eight",), ("numeral nine",),
    ("tank top",), ("pair of slacks",), ("knitted sweater",), ("gown",), ("overcoat",),
    ("beach sandal",), ("flannel shirt",), ("athletic shoe",), ("tote bag",), ("leather boot",),
)
HELD_OUT_TEMPLATES: dict[str, tuple[str, ...]] = {
    "mnist": ("someone wrote a {} by hand", "a pen sketch of a {}", "a black and white {}"),
    "fashion-mnist": ("a catalogue picture showing a {}", "a tiny grayscale image of a {}", "look at this {}"),
}


_A_KEEPS = ("one", "uni", "use")  # "a one", "a uniform": the vowel letter is not a vowel sound


def fill(template: str, synonym: str) -> str:
    """``template`` with ``synonym`` in its slot, "a" turned into "an" before a vowel sound ("an ankle boot",
    "an 8")."""
    text = template.format(synonym)
    return re.sub(r"\b([Aa]) (?=(?!" + "|".join(_A_KEEPS) + r")([aeiouAEIOU]|8|11|18))", lambda m: m.group(1) + "n ",
                  text)


def domain_of(label: int) -> str:
    """``"mnist"`` for labels 0–9, ``"fashion-mnist"`` for 10–19."""
    if not 0 <= int(label) < N_CLASSES:
        raise ValueError(f"caption labels lie in 0..{N_CLASSES - 1}, got {label}")
    return DOMAINS[int(label) // 10]


def captions(label: int, split: str = "train") -> list[str]:
    """Every caption of class ``label``: training templates × synonyms (``"train"``), or the held-out set, in
    which each caption has a held-out template, a held-out synonym or both (``"held-out"``)."""
    dom = domain_of(label)
    if split == "train":
        return [fill(t, s) for t, s in itertools.product(TEMPLATES[dom], SYNONYMS[label])]
    if split == "held-out":
        out = [fill(t, s) for t, s in itertools.product(HELD_OUT_TEMPLATES[dom], SYNONYMS[label][:1])]
        out += [fill(t, s) for t, s in itertools.product(TEMPLATES[dom][:1], HELD_OUT_SYNONYMS[label])]
        out += [fill(t, s) for t, s in itertools.product(HELD_OUT_TEMPLATES[dom][:2], HELD_OUT_SYNONYMS[label])]
        return out
    raise ValueError(f"split must be 'train' or 'held-out', got {split!r}")


def class_prompt(label: int) -> str:
    """The plain class-name prompt: "a handwritten 7", "a photo of a sneaker"."""
    dom = domain_of(label)
    return fill(TEMPLATES[dom][0] if dom == "mnist" else TEMPLATES[dom][1], SYNONYMS[label][0])


def training_captions() -> tuple[list[str], np.ndarray]:
    """All training captions, class by class, and the class of each (int64)."""
    texts, labels = [], []
    for label in range(N_CLASSES):
        cs = captions(label, "train")
        texts += cs
        labels += [label] * len(cs)
    return texts, np.asarray(labels, dtype=np.int64)


def caption_table() -> tuple[np.ndarray, np.ndarray]:
    """(offsets (20,), counts (20,)) of each class's block in :func:`training_captions`: caption index
    offsets[c] + j for j < counts[c]."""
    counts = np.asarray([len(captions(c, "train")) for c in range(N_CLASSES)], dtype=np.int64)
    return np.concatenate([[0], np.cumsum(counts)[:-1]]), counts


__all__ = ["N_CLASSES", "DOMAINS", "SYNONYMS", "TEMPLATES", "HELD_OUT_SYNONYMS", "HELD_OUT_TEMPLATES", "fill", "domain_of",
           "captions", "class_prompt", "training_captions", "caption_table"]
