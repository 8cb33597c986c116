"""The tour: the road from KL divergence to the diffusion model, one report section per chapter.

Each chapter module in :data:`CHAPTERS` has ``section(ctx: TourContext) -> Section``; ``kakusan tour``
runs them in order and writes one self-contained HTML report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from kakusan.report.run_dir import RunDir

Size = Literal["tiny", "default"]

# Chapter modules under kakusan.tour, in the order of the road.
CHAPTERS = ("gaussian", "boltzmann", "hidden", "mcmc", "mcmc_free", "rbm", "vae", "diffusion", "prompt")
# The rest of the road, named in the report's contents as not yet built.
PLANNED: tuple[str, ...] = ()


@dataclass
class Section:
    """One chapter of the report: prose (HTML allowed), figures with captions, and key numbers."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    figures: list[tuple[Path, str]] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)


@dataclass
class TourContext:
    """What a chapter's section gets: the run directory, the size, a seeded generator, the digits data."""

    run: RunDir
    size: Size
    generator: torch.Generator
    _digits: Any = None

    @property
    def digits(self):
        """The bundled 8x8 digits (a ``kakusan.data.Dataset``), loaded once."""
        if self._digits is None:
            from kakusan.data import load

            self._digits = load("digits")
        return self._digits

    def figure(self, name: str) -> Path:
        """Path for a figure of this run (``figures/NAME``)."""
        return self.run.figures / name
