"""Tour section: the Boltzmann machine — exact enumeration and learning by moment matching."""

from __future__ import annotations

import torch

from kakusan.tour import Section, TourContext


def digit_spins(ctx: TourContext, side: int) -> torch.Tensor:
    """Digits pooled to side×side pixels, thresholded at 0.5 and mapped to ±1 spins: (n, side²)."""
    from kakusan.data.transforms import binarise, to_spins

    x = ctx.digits.x_train[:, None]  # (n, 1, 8, 8) in [0, 1]
    pooled = torch.nn.functional.adaptive_avg_pool2d(x, side)[:, 0]  # (n, side, side)
    return to_spins(binarise(pooled.reshape(len(x), -1))).to(torch.float64)


def section(ctx: TourContext) -> Section:
    from kakusan.boltzmann import exact_stats, instances, kl_divergence
    from kakusan.learn import fit_boltzmann
    from kakusan.report import figures

    tiny = ctx.size == "tiny"
    steps = 60 if tiny else 400
    sec = Section("The Boltzmann machine: exact enumeration and moment matching")
    sec.paragraphs.append(
        "q(x) = exp(−E(x))/Z with E(x) = −Σ<sub>k&lt;l</sub> J<sub>kl</sub>x<sub>k</sub>x<sub>l</sub> − Σ h<sub>k</sub>"
        "x<sub>k</sub> on x ∈ {−1,+1}<sup>N</sup>. The gradient of KL(p<sub>0</sub>‖q) is data statistics minus "
        "model statistics, ⟨x<sub>k</sub>x<sub>l</sub>⟩<sub>data</sub> − ⟨x<sub>k</sub>x<sub>l</sub>⟩<sub>model</sub>; "
        "here the model statistics are exact (all 2<sup>N</sup> states enumerated) and the step is taken from a "
        "quadratic upper bound with a backtracking curvature L, so the KL never increases.")

    # 1. recover a known spin glass from its own samples
    n = 8 if tiny else 12
    truth = instances.sherrington_kirkpatrick(n, beta=0.8, seed=int(torch.randint(1 << 30, (1,), generator=ctx.generator)))
    data = truth.sample(2000 if tiny else 20000, ctx.generator)
    model, result = fit_boltzmann(data, steps=steps, progress=False)
    iu = torch.triu_indices(n, n, 1)
    tJ, lJ = truth.couplings().detach()[iu[0], iu[1]], model.couplings().detach()[iu[0], iu[1]]
    rel = float((lJ - tJ).norm() / tJ.norm())
    sec.figures.append((figures.scatter_plot(tJ, lJ, ctx.figure("bm_couplings.png"), xlabel="true J_kl",
                                             ylabel="learned J_kl", title=f"SK N={n}, M={len(data)}"),
                        f"Couplings learned from {len(data)} exact samples of an SK spin glass against the truth."))
    sec.figures.append((figures.line_plot({"mean NLL": [r["nll"] for r in result.history]}, ctx.figure("bm_nll.png"),
                                          ylabel="nats", title="exact NLL per step"),
                        "The exact mean negative log-likelihood during learning: it never increases."))

    # 2. a Boltzmann machine of pooled digits
    side = 3 if tiny else 4
    spins = digit_spins(ctx, side)
    digit_model, digit_result = fit_boltzmann(spins, steps=steps, progress=False)
    samples = digit_model.sample(36, ctx.generator)
    sec.figures.append((figures.image_grid((spins[:36].reshape(-1, side, side) + 1) / 2, ctx.figure("bm_data.png"),
                                           nrow=6, scale=8), f"Training data: digits pooled to {side}×{side} and binarised."))
    sec.figures.append((figures.image_grid((samples.reshape(-1, side, side) + 1) / 2, ctx.figure("bm_samples.png"),
                                           nrow=6, scale=8), "Exact samples of the learned Boltzmann machine."))
    sec.figures.append((figures.heatmap(digit_model.couplings().detach(), ctx.figure("bm_digit_J.png"),
                                        title="learned couplings J"), "Learned couplings between the pooled pixels."))
    stats = exact_stats(digit_model)
    sec.numbers.update({
        "SK: relative error ‖J − J_true‖/‖J_true‖": rel,
        "SK: KL(p0‖q) learned (nats)": kl_divergence(model, data),
        "SK: KL(p0‖q) true model (nats)": kl_divergence(truth, data),
        f"digits {side}×{side}: mean log-likelihood (nats)": -digit_result.history[-1]["nll"],
        f"digits {side}×{side}: log Z": stats.log_z,
    })
    return sec
