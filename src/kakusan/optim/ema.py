"""Exponential moving averages of a model's weights, at one or several decays.

After every optimizer step each average moves toward the current weights,
θ̄ ← d θ̄ + (1 − d) θ, so θ̄ averages roughly the last 1/(1 − d) steps. Samplers and evaluations of
deep generative models use θ̄ by default: the averaged weights give visibly better samples than the
last iterate (Song & Ermon 2020; Ho et al. 2020 use d = 0.9999). Buffers that are not floating point
(counters) are copied, not averaged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from kakusan.errors import KakusanError


def part_name(decay: float) -> str:
    """The checkpoint part that holds the average at ``decay``: ``ema@0.999``."""
    return f"ema@{decay:g}"


class EMA:
    """Averages of ``model``'s state (parameters and floating-point buffers), one per decay."""

    def __init__(self, model: torch.nn.Module, decays: Sequence[float]):
        decays = tuple(float(d) for d in decays)
        if not decays or any(not 0.0 <= d < 1.0 for d in decays):
            raise KakusanError(f"EMA decays must be in [0, 1), got {list(decays)}: e.g. 0.999 or 0.9999")
        if len(set(decays)) != len(decays):
            raise KakusanError(f"EMA decays repeat: {list(decays)}")
        self.decays = decays
        state = model.state_dict()
        self.averages = [{k: v.detach().clone() for k, v in state.items()} for _ in decays]

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """θ̄ ← d θ̄ + (1 − d) θ for every decay (one fused kernel per decay)."""
        state = model.state_dict()
        floats = [k for k, v in state.items() if v.is_floating_point()]
        current = [state[k].detach() for k in floats]
        for decay, avg in zip(self.decays, self.averages):
            torch._foreach_lerp_([avg[k] for k in floats], current, 1.0 - decay)
            for k, v in state.items():
                if not v.is_floating_point():
                    avg[k].copy_(v)

    def state(self, decay: float | None = None) -> dict[str, torch.Tensor]:
        """The averaged state dict at ``decay`` (default: the first decay)."""
        i = 0 if decay is None else self._index(decay)
        return self.averages[i]

    def copy_to(self, model: torch.nn.Module, decay: float | None = None) -> None:
        """Load the average at ``decay`` into ``model`` (e.g. a copy used for sampling)."""
        model.load_state_dict(self.state(decay))

    def parts(self) -> dict[str, dict[str, torch.Tensor]]:
        """Checkpoint parts, ``{"ema@0.999": state, ...}``."""
        return {part_name(d): avg for d, avg in zip(self.decays, self.averages)}

    def load_parts(self, parts: dict[str, dict[str, torch.Tensor]]) -> None:
        for d, avg in zip(self.decays, self.averages):
            saved = parts.get(part_name(d))
            if saved is None:
                raise KakusanError(f"the checkpoint has no EMA at decay {d:g} (it has {sorted(parts)}): resume with "
                                   "the EMA decays the run was started with")
            for k, v in avg.items():
                v.copy_(saved[k])

    def _index(self, decay: float) -> int:
        for i, d in enumerate(self.decays):
            if abs(d - decay) < 1e-12:
                return i
        raise KakusanError(f"no EMA at decay {decay:g}; kept: {', '.join(f'{d:g}' for d in self.decays)}")


__all__ = ["EMA", "part_name"]
