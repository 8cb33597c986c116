"""Text conditioning as one batched object: the token states a denoiser cross-attends to, and a pooled vector.

``TextCondition(tokens (n, S, d), mask (n, S) bool, pooled (n, d))`` is what a text encoder gives for n
prompts (:class:`kakusan.text.TextEncoder`) and what a text-conditional denoiser takes as ``cond``
(:class:`~kakusan.diffusion.unet.UNet` with ``context_dim``): the samplers pass ``cond`` through untouched, and
classifier-free guidance stacks a condition with its null (the empty prompt's, or a negative prompt's) by
:meth:`TextCondition.cat`, which pads the token axis to the longer of the two (padded positions are masked).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from kakusan.errors import DataError

Tensor = torch.Tensor


@dataclass(frozen=True)
class TextCondition:
    tokens: Tensor  # (n, S, d) token states
    mask: Tensor  # (n, S) bool: True at real tokens
    pooled: Tensor  # (n, d) the sentence embedding

    def __post_init__(self):
        n, S = self.mask.shape
        if self.tokens.shape[:2] != (n, S) or self.pooled.shape[0] != n or self.mask.dtype != torch.bool:
            raise DataError(f"a TextCondition needs tokens (n, S, d), a bool mask (n, S) and pooled (n, d); got "
                            f"{tuple(self.tokens.shape)}, {self.mask.dtype} {tuple(self.mask.shape)}, "
                            f"{tuple(self.pooled.shape)}")

    def __len__(self) -> int:
        return len(self.mask)

    @property
    def dim(self) -> int:
        return self.tokens.shape[-1]

    def to(self, device=None, dtype=None) -> "TextCondition":
        return TextCondition(self.tokens.to(device, dtype), self.mask.to(device), self.pooled.to(device, dtype))

    def take(self, index: Tensor) -> "TextCondition":
        """The rows ``index`` (a (m,) index tensor), in that order."""
        return TextCondition(self.tokens[index], self.mask[index], self.pooled[index])

    def expand(self, n: int) -> "TextCondition":
        """One condition repeated n times (a view); a condition of n rows as it is."""
        if len(self) == n:
            return self
        if len(self) != 1:
            raise DataError(f"a condition of {len(self)} rows cannot serve a batch of {n}: give one prompt or {n}")
        return TextCondition(self.tokens.expand(n, -1, -1), self.mask.expand(n, -1), self.pooled.expand(n, -1))

    @staticmethod
    def cat(conds: "list[TextCondition]") -> "TextCondition":
        """Rows of several conditions stacked; token axes padded to the longest (masked)."""
        S = max(c.tokens.shape[1] for c in conds)
        tokens, masks = [], []
        for c in conds:
            pad = S - c.tokens.shape[1]
            tokens.append(torch.nn.functional.pad(c.tokens, (0, 0, 0, pad)))
            masks.append(torch.nn.functional.pad(c.mask, (0, pad), value=False))
        return TextCondition(torch.cat(tokens), torch.cat(masks), torch.cat([c.pooled for c in conds]))


def cat_cond(a, b):
    """[a; b] for labels (tensors) or text conditions."""
    if isinstance(a, TextCondition):
        return TextCondition.cat([a, b])
    return torch.cat([a, b])


__all__ = ["TextCondition", "cat_cond"]
