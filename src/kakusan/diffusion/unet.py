"""The UNet denoiser for images: GroupNorm residual blocks with the time/class embedding, self-attention at low
resolution, down- and up-sampling with skip connections (Ronneberger et al. 2015; Ho et al. 2020; Nichol &
Dhariwal 2021), kept lean for the CPU.

``UNet(config, data_shape, T, n_classes=0, out_mult=1)`` follows the denoiser contract of
:mod:`~kakusan.diffusion.nets`: ``net(x, t, cond=None)`` with x (n, C, H, W), t (n,) float step indices in
[0, T], cond (n,) labels (``n_classes`` is the null class) → (n, C·out_mult, H, W).

The layout, for ``channels`` = (c_0, …, c_{L−1}) (one entry per resolution level) and ``layers`` = k::

    conv 3×3  C → c_0
    level l = 0 … L−1, at H/2^l:   k × ResBlock(→ c_l) [+ attention]  → skip_l;  then (l < L−1) a stride-2
                                   conv 3×3 c_l → c_{l+1} (sizes round up: 28 → 14 → 7 → 4)
    middle, at the lowest level:   ResBlock [+ attention + ResBlock when the lowest level has attention]
    level l = L−1 … 0:             (l < L−1) a 1×1 conv c_{l+1} → c_l, then nearest upsampling to skip_l's size;
                                   concatenate skip_l (``skip="cat"``) or add it (``"add"``);
                                   k × ResBlock(→ c_l) [+ attention]
    GroupNorm, SiLU, conv 3×3 c_0 → C·out_mult   (zero-initialised: the untrained net predicts 0)

A ResBlock is GroupNorm → SiLU → conv 3×3 → + emb → GroupNorm → SiLU [→ dropout] → conv 3×3, plus the input
(through a 1×1 conv when the width changes); with ``scale_shift`` the embedding instead modulates the second
norm, GN(h)·(1 + s) + b (Dhariwal & Nichol 2021). The embedding is :class:`~kakusan.diffusion.nets.
TimeClassEmbedding` (sinusoidal time features → MLP, plus a class embedding with a null class); every block's
projection of SiLU(emb) is one fused linear layer, computed once per forward. Attention is multi-head
self-attention over the H·W positions (GroupNorm, one linear for q, k, v, softmax(q kᵀ/√d) v, a zero-initialised
output projection, residual), written with ``bmm`` so that its FLOPs are counted like every other matmul.

Why lean. Compared with the DDPM/diffusers layout (``layers`` + 1 blocks on the way up, each fed its own skip,
and a 3×3 conv after every upsampling), the up path here has ``layers`` blocks per level fed by one skip, and the
channel change before upsampling is a 1×1 conv at the low resolution (nearest upsampling commutes with a 1×1
conv). On a CPU the high-resolution levels dominate both FLOPs and the memory-bound GroupNorm/SiLU passes, so
this halves the work at equal widths; ``skip="add"`` (additive skips, as in feature pyramids) saves the wider
first conv of every up level again. Memory format: on the CPU, images of ≥ 256 pixels run channels_last
(oneDNN's convs with 16–32 channels are up to ~3× faster in NHWC than in NCHW, which they reorder to and from on
every call), with a GroupNorm of its own for NHWC tensors (:class:`_GroupNormNHWC`: torch's CPU GroupNorm is
~10× slower on channels_last input than on NCHW); small images and other devices stay NCHW (``UNet.
channels_last`` overrides). Other choices: the embedding and the residual are added in place onto conv outputs
(which autograd does not keep), SiLU runs in place on GroupNorm outputs (whose backward needs only the input).

``UNetConfig()`` is the MNIST model (channels (32, 64, 64), attention at 7×7: 0.20 GFLOP per 28×28 image);
``UNetConfig.tiny()`` is the benchmark preset: the widths of diffusers' tiny ``UNet2DModel`` configuration
(16, 32, 32), no attention, additive skips — 0.038 GFLOP per image against diffusers' 0.093 (with concatenated
skips, 0.048; benchmarks/results_diffusion.md). :meth:`UNet.gflop_per_example` counts a forward
pass with hooks on every conv, linear layer and attention product (multiply-adds × 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from kakusan.diffusion.nets import TimeClassEmbedding
from kakusan.errors import DataError, KakusanError

Tensor = torch.Tensor


@dataclass(frozen=True)
class UNetConfig:
    """A UNet denoiser's hyper-parameters (module docstring); the input channels come from the data.

    channels : width of each resolution level, highest resolution first (each level halves H and W).
    layers : residual blocks per level on the way down, and again on the way up.
    attention : per level, whether its blocks are followed by self-attention (keep it to the lowest levels).
    head_dim : channels per attention head (a level of width c has max(1, c // head_dim) heads).
    groups : GroupNorm groups (every width must be a multiple).
    time_dim : sinusoidal time features; emb_dim : the embedding's width (0: 4 · channels[0]).
    dropout : inside the residual blocks, before their second conv.
    scale_shift : the embedding modulates the second norm (GN(h)·(1+s) + b) instead of being added.
    skip : how the up path takes each level's skip: ``"cat"`` (concatenated, the DDPM UNet) or ``"add"`` (added;
        cheaper: the first block of each up level keeps its width).
    context_dim : > 0 makes a text-conditional net: ``cond`` is a :class:`~kakusan.diffusion.conditioning.
        TextCondition` whose token states (of this width) every attention level cross-attends to, and whose pooled
        embedding joins the time embedding.
    """

    channels: tuple[int, ...] = (32, 64, 64)
    layers: int = 1
    attention: tuple[bool, ...] = (False, False, True)
    head_dim: int = 32
    groups: int = 8
    time_dim: int = 64
    emb_dim: int = 0
    dropout: float = 0.0
    scale_shift: bool = False
    skip: Literal["cat", "add"] = "cat"
    context_dim: int = 0

    @classmethod
    def tiny(cls) -> "UNetConfig":
        """The benchmark preset: the widths of diffusers' tiny UNet2DModel (16, 32, 32), no attention, additive
        skips; 0.038 GFLOP per 28×28 image (the diffusers model: 0.093)."""
        return cls(channels=(16, 32, 32), layers=1, attention=(False, False, False), groups=8, time_dim=16,
                   skip="add")

    @classmethod
    def mnist(cls) -> "UNetConfig":
        """The default: the model we train on MNIST on a CPU."""
        return cls()

    def check(self) -> "UNetConfig":
        ch, att = tuple(self.channels), tuple(self.attention)
        if not ch or not all(isinstance(c, int) and c > 0 for c in ch):
            raise KakusanError(f"UNet channels must be positive widths, one per level, got {self.channels!r}")
        if len(att) != len(ch):
            raise KakusanError(f"UNet attention needs one flag per level ({len(ch)}), got {self.attention!r}")
        if not isinstance(self.layers, int) or self.layers < 1:
            raise KakusanError(f"UNet layers must be a positive integer, got {self.layers!r}")
        if not isinstance(self.groups, int) or self.groups < 1 or any(c % self.groups for c in ch):
            raise KakusanError(f"every UNet width {ch} must be a multiple of groups={self.groups}")
        if self.head_dim < 1 or self.time_dim < 1 or self.emb_dim < 0:
            raise KakusanError("UNet head_dim and time_dim must be positive, emb_dim ≥ 0")
        if not 0.0 <= self.dropout < 1.0:
            raise KakusanError(f"UNet dropout must lie in [0, 1), got {self.dropout}")
        if self.skip not in ("cat", "add"):
            raise KakusanError(f"UNet skip must be 'cat' or 'add', got {self.skip!r}")
        if not isinstance(self.context_dim, int) or self.context_dim < 0:
            raise KakusanError(f"UNet context_dim must be a non-negative integer, got {self.context_dim!r}")
        if self.context_dim and not any(att):
            raise KakusanError("a text-conditional UNet (context_dim > 0) needs attention at one level at least: its "
                               "cross-attention follows each self-attention")
        return self


class _GroupNormNHWC(torch.autograd.Function):
    """GroupNorm of a channels_last CPU tensor, as reductions over positions and elementwise passes (torch's own
    CPU GroupNorm is ~10× slower on channels_last input than on NCHW). Two passes, so that large means do not
    cancel: the group means m, then the variance of the centred d = x − m; y = d·(w/σ) + b. The backward is the
    closed form of GroupNorm's gradient, from the saved d."""

    @staticmethod
    def forward(ctx, x: Tensor, groups: int, weight: Tensor, bias: Tensor, eps: float) -> Tensor:
        n, c, H, W = x.shape
        cg, cnt = c // groups, H * W * (c // groups)
        x3 = x.permute(0, 2, 3, 1).reshape(n, H * W, c)  # a view: channels are the fastest dimension
        mean = x3.sum(1).view(n, groups, cg).sum(-1, keepdim=True) / cnt  # (n, G, 1)
        d = x3 - mean.expand(n, groups, cg).reshape(n, 1, c)
        var = (d * d).sum(1).view(n, groups, cg).sum(-1, keepdim=True) / cnt
        rstd = torch.rsqrt(var + eps)
        a = (rstd * weight.view(groups, cg)).reshape(n, 1, c)  # y = a·d + bias per (example, channel)
        y = torch.empty_like(x, memory_format=torch.channels_last)  # not a view (SiLU runs in place on it)
        torch.addcmul(bias.view(1, 1, c), d, a, out=y.permute(0, 2, 3, 1).view(n, H * W, c))
        ctx.save_for_backward(d, weight, rstd)
        ctx.groups, ctx.shape = groups, (n, c, H, W)
        return y

    @staticmethod
    def backward(ctx, dy: Tensor):
        d, weight, rstd = ctx.saved_tensors
        G, (n, c, H, W) = ctx.groups, ctx.shape
        cg, cnt = c // G, H * W * (c // G)
        dy3 = dy.permute(0, 2, 3, 1).reshape(n, H * W, c)
        sum_dy = dy3.sum(1).view(n, G, cg)
        sum_dy_xhat = (dy3 * d).sum(1).view(n, G, cg) * rstd  # Σ dy·x̂ per channel, x̂ = d/σ
        w = weight.view(1, G, cg)
        u = (w * sum_dy).sum(-1, keepdim=True) / cnt  # group means of dx̂ = dy·w and of dx̂·x̂
        v = (w * sum_dy_xhat).sum(-1, keepdim=True) / cnt
        # dx = (dx̂ − u − x̂ v)/σ = P·dy + Q·d + R per (example, channel)
        P = (rstd * w).reshape(n, 1, c)
        Q = (-rstd * rstd * v).expand(n, G, cg).reshape(n, 1, c)
        R = (-rstd * u).expand(n, G, cg).reshape(n, 1, c)
        dx = torch.addcmul(R, d, Q).addcmul_(dy3, P).view(n, H, W, c).permute(0, 3, 1, 2)
        return dx, None, sum_dy_xhat.sum(0).reshape(c), sum_dy.sum(0).reshape(c), None


def to_channels_last(x: Tensor) -> Tensor:
    """x (n, C, H, W) with channels_last strides, also for C = 1 (where torch keeps NCHW strides, which would
    send the first conv, and so the whole net, down the NCHW path)."""
    x = x.contiguous(memory_format=torch.channels_last)
    n, C, H, W = x.shape
    return x.as_strided(x.shape, (H * W * C, 1, W * C, C)) if C == 1 and x.is_contiguous() else x


def group_norm(x: Tensor, norm: nn.GroupNorm) -> Tensor:
    """``norm(x)``, through :class:`_GroupNormNHWC` for channels_last tensors on the CPU."""
    if x.device.type == "cpu" and x.ndim == 4 and not x.is_contiguous() and \
            x.is_contiguous(memory_format=torch.channels_last):
        return _GroupNormNHWC.apply(x, norm.num_groups, norm.weight, norm.bias, norm.eps)
    return F.group_norm(x, norm.num_groups, norm.weight, norm.bias, norm.eps)


class GroupNormSiLU(nn.GroupNorm):
    """GroupNorm followed by SiLU (in place on the norm's own output, which its backward does not need)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.silu(group_norm(x, self), inplace=True)


class ResBlock(nn.Module):
    """GN → SiLU → conv → + emb → GN → SiLU [→ dropout] → conv, plus the (projected) input."""

    def __init__(self, c_in: int, c_out: int, groups: int, dropout: float = 0.0, scale_shift: bool = False):
        super().__init__()
        self.scale_shift = scale_shift
        self.emb_width = 2 * c_out if scale_shift else c_out  # this block's slice of the fused projection
        self.norm1 = GroupNormSiLU(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x: Tensor, e: Tensor) -> Tensor:
        h = self.conv1(self.norm1(x))
        e = e[:, :, None, None]
        if self.scale_shift:
            scale, shift = e.chunk(2, dim=1)
            h = torch.addcmul(shift, group_norm(h, self.norm2), scale + 1)
        else:
            h += e  # in place on the conv's output (its backward keeps the input, not the output)
            h = group_norm(h, self.norm2)
        h = F.silu(h, inplace=True)
        if self.dropout is not None:
            h = self.dropout(h)
        h = self.conv2(h)
        h += x if self.skip is None else self.skip(x)
        return h


class Attention(nn.Module):
    """Multi-head self-attention over the positions of a (n, c, H, W) map, residual, zero-initialised output."""

    def __init__(self, channels: int, heads: int, groups: int):
        super().__init__()
        self.heads, self.head_dim = heads, channels // heads
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = nn.Linear(channels, channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.flops = 0  # of the two products, for one example; set by each forward

    def forward(self, x: Tensor) -> Tensor:
        n, c, H, W = x.shape
        L, h, d = H * W, self.heads, self.head_dim
        tokens = group_norm(x, self.norm).permute(0, 2, 3, 1).reshape(n, L, c)  # a view when x is channels_last
        q, k, v = self.qkv(tokens).reshape(n, L, 3, h, d).permute(2, 0, 3, 1, 4).reshape(3, n * h, L, d).unbind(0)
        weights = torch.baddbmm(q.new_empty(()), q, k.transpose(1, 2), beta=0.0, alpha=1.0 / math.sqrt(d))
        a = torch.bmm(weights.softmax(dim=-1), v)  # (n·h, L, d)
        a = a.reshape(n, h, L, d).transpose(1, 2).reshape(n, L, c)
        self.flops = 2 * 2 * h * L * L * d
        return x + self.out(a).view(n, H, W, c).permute(0, 3, 1, 2)


class CrossAttention(nn.Module):
    """Multi-head cross-attention of a (n, c, H, W) map's positions (queries) to the token states of a
    :class:`~kakusan.diffusion.conditioning.TextCondition` (keys and values, LayerNorm-ed), with its padding masked;
    residual, zero-initialised output (Rombach et al. 2022)."""

    def __init__(self, channels: int, context_dim: int, heads: int, groups: int):
        super().__init__()
        self.heads, self.head_dim = heads, channels // heads
        self.norm = nn.GroupNorm(groups, channels)
        self.q = nn.Linear(channels, channels)
        self.context_norm = nn.LayerNorm(context_dim)
        self.kv = nn.Linear(context_dim, 2 * channels)
        self.out = nn.Linear(channels, channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.flops = 0

    def forward(self, x: Tensor, context) -> Tensor:
        n, c, H, W = x.shape
        L, h, d = H * W, self.heads, self.head_dim
        tokens = group_norm(x, self.norm).permute(0, 2, 3, 1).reshape(n, L, c)
        q = self.q(tokens).reshape(n, L, h, d).transpose(1, 2).reshape(n * h, L, d)
        ctx = context.tokens.to(x.dtype)
        S = ctx.shape[1]
        k, v = self.kv(self.context_norm(ctx)).reshape(n, S, 2, h, d).permute(2, 0, 3, 1, 4).reshape(2, n * h, S, d)
        weights = torch.baddbmm(q.new_empty(()), q, k.transpose(1, 2), beta=0.0, alpha=1.0 / math.sqrt(d))
        mask = context.mask.to(x.device)[:, None, None, :].expand(n, h, 1, S).reshape(n * h, 1, S)
        weights = weights.masked_fill(~mask, float("-inf"))
        a = torch.bmm(weights.softmax(dim=-1), v).reshape(n, h, L, d).transpose(1, 2).reshape(n, L, c)
        self.flops = 2 * 2 * h * L * S * d
        return x + self.out(a).view(n, H, W, c).permute(0, 3, 1, 2)


class UNet(nn.Module):
    """The UNet denoiser (module docstring): ``UNet(config, (C, H, W), T, n_classes=0, out_mult=1)``."""

    def __init__(self, config: UNetConfig, data_shape: tuple[int, ...], T: int, n_classes: int = 0,
                 out_mult: int = 1):
        super().__init__()
        if len(data_shape) != 3:
            raise DataError(f"the UNet takes images (C, H, W), got data of shape {tuple(data_shape)}: use the MLP "
                            "denoiser for vectors")
        config.check()
        self.config, self.out_mult, self.data_shape = config, out_mult, tuple(data_shape)
        C = data_shape[0]
        ch, k, g = tuple(config.channels), config.layers, config.groups
        L = len(ch)
        emb = config.emb_dim or 4 * ch[0]

        def block(c_in: int, c_out: int) -> ResBlock:
            return ResBlock(c_in, c_out, g, config.dropout, config.scale_shift)

        def attention(c: int) -> list[nn.Module]:
            heads = max(1, c // config.head_dim)
            return [Attention(c, heads, g)] + ([CrossAttention(c, config.context_dim, heads, g)]
                                               if config.context_dim else [])

        self.embed = TimeClassEmbedding(config.time_dim, emb, T, n_classes, config.context_dim)
        self.conv_in = nn.Conv2d(C, ch[0], 3, padding=1)
        self.down = nn.ModuleList()  # per level: blocks (and attentions), then the downsampling conv
        for lvl, c in enumerate(ch):
            stage = nn.ModuleList()
            for _ in range(k):
                stage.append(block(c, c))
                if config.attention[lvl]:
                    stage.extend(attention(c))
            if lvl < L - 1:
                stage.append(nn.Conv2d(c, ch[lvl + 1], 3, stride=2, padding=1))
            self.down.append(stage)
        self.mid = nn.ModuleList([block(ch[-1], ch[-1])])
        if config.attention[-1]:
            self.mid.extend([*attention(ch[-1]), block(ch[-1], ch[-1])])
        self.up = nn.ModuleList()  # per level, lowest first: (1×1 conv before upsampling), blocks (and attentions)
        for lvl in reversed(range(L)):
            c = ch[lvl]
            stage = nn.ModuleList()
            if lvl < L - 1:
                stage.append(nn.Conv2d(ch[lvl + 1], c, 1))
            for j in range(k):
                stage.append(block(2 * c if j == 0 and config.skip == "cat" else c, c))
                if config.attention[lvl]:
                    stage.extend(attention(c))
            self.up.append(stage)
        self.norm_out = GroupNormSiLU(g, ch[0])
        self.conv_out = nn.Conv2d(ch[0], C * out_mult, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)
        self._emb_widths = [m.emb_width for m in self.modules() if isinstance(m, ResBlock)]
        self.emb_proj = nn.Linear(emb, sum(self._emb_widths))  # every block's projection of SiLU(emb), fused
        self._gflop: float | None = None
        self._cat = config.skip == "cat"

    # the memory format: None chooses channels_last on the CPU for images of ≥ 256 pixels (where its convs win),
    # NCHW elsewhere (small images: fewer ops; GPUs: torch's own GroupNorm)
    channels_last: bool | None = None

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        cl = self.channels_last
        if cl is None:
            cl = x.device.type == "cpu" and x.ndim == 4 and x.shape[-2] * x.shape[-1] >= 256
        if cl:
            x = to_channels_last(x)
        emb = self.embed(t, cond)
        es = iter(self.emb_proj(F.silu(emb)).split(self._emb_widths, dim=1))  # in module order
        h = self.conv_in(x)
        skips = []
        for stage in self.down:
            for m in stage:
                if isinstance(m, ResBlock):
                    h = m(h, next(es))
                elif isinstance(m, Attention):
                    h = m(h)
                elif isinstance(m, CrossAttention):
                    h = m(h, cond)
                else:  # the downsampling conv ends the level
                    skips.append(h)
                    h = m(h)
        skips.append(h)
        for m in self.mid:
            h = m(h, next(es)) if isinstance(m, ResBlock) else m(h, cond) if isinstance(m, CrossAttention) else m(h)
        for stage in self.up:
            skip = skips.pop()
            first = True
            for m in stage:
                if isinstance(m, ResBlock):
                    if first:
                        if self._cat:
                            h = torch.cat([h, skip], dim=1)
                        else:  # in place: h is a fresh output (of the middle or of the upsampling)
                            h += skip
                        first = False
                    h = m(h, next(es))
                elif isinstance(m, Attention):
                    h = m(h)
                elif isinstance(m, CrossAttention):
                    h = m(h, cond)
                else:  # the 1×1 conv to this level's width, then nearest upsampling to its size
                    h = F.interpolate(m(h), size=skip.shape[-2:], mode="nearest")
        out = self.conv_out(self.norm_out(h))
        return out.contiguous() if cl else out

    def gflop_per_example(self) -> float:
        """GFLOP of one forward pass for one example (multiply-adds × 2 of every conv, linear layer and attention
        product; norms, activations and additions are not counted), counted once by running the net."""
        if self._gflop is None:
            self._gflop = count_flops(self, self.data_shape) / 1e9
        return self._gflop


CONTEXT_TOKENS = 8  # prompt length (word pieces with [CLS] and [SEP]) at which a text-conditional net's FLOPs are counted


def count_flops(net: nn.Module, shape: tuple[int, ...]) -> int:
    """FLOPs (multiply-adds × 2) of ``net`` on one example of ``shape``, counted with forward hooks on every
    Conv2d, Linear and Attention (its two products) during a forward pass at t = 0."""
    total = [0]

    def hook(module: nn.Module, inputs, output) -> None:
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total[0] += 2 * output.numel() * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, nn.Linear):
            total[0] += 2 * output.numel() * module.in_features
        elif isinstance(module, (Attention, CrossAttention)):
            total[0] += module.flops

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear,
                                                                                      Attention, CrossAttention))]
    p = next(net.parameters())
    cond = None
    width = getattr(getattr(net, "config", None), "context_dim", 0)
    if width:  # a text-conditional net: counted for a prompt of CONTEXT_TOKENS tokens
        from kakusan.diffusion.conditioning import TextCondition

        cond = TextCondition(torch.zeros(1, CONTEXT_TOKENS, width, device=p.device, dtype=p.dtype),
                             torch.ones(1, CONTEXT_TOKENS, dtype=torch.bool, device=p.device),
                             torch.zeros(1, width, device=p.device, dtype=p.dtype))
    try:
        with torch.no_grad():
            net(torch.zeros((1, *shape), device=p.device, dtype=p.dtype), torch.zeros(1, device=p.device), cond)
    finally:
        for h in handles:
            h.remove()
    return total[0]


__all__ = ["UNetConfig", "UNet", "ResBlock", "Attention", "CrossAttention", "count_flops", "group_norm", "to_channels_last"]
