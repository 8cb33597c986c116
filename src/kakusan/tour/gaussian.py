"""Tour section: the KL divergence, and the Gaussian learned by closed form and by following the KL gradient."""

from __future__ import annotations

import torch

from kakusan.tour import Section, TourContext

INTRO = (
    "Every model on the road is learned by minimising KL(p<sub>0</sub>‖q) = Σ p<sub>0</sub> log p<sub>0</sub>/q "
    "from the empirical distribution p<sub>0</sub> of the data to the model q. Since KL(p<sub>0</sub>‖q) = "
    "−H(p<sub>0</sub>) − (1/n)Σ<sub>i</sub> log q(x<sub>i</sub>) and H(p<sub>0</sub>) does not depend on q, this is "
    "maximum likelihood. KL ≥ 0, with equality only when q = p<sub>0</sub> (Gibbs' inequality).")
GAUSS = (
    "For a Gaussian q = N(μ, Σ) with precision Λ = Σ<sup>−1</sup>, the gradients of the mean log-likelihood are "
    "∂/∂μ = Λ(x̄ − μ) and ∂/∂Λ = ½(Σ − S<sub>μ</sub>), with S<sub>μ</sub> = (1/n)Σ(x<sub>i</sub>−μ)(x<sub>i</sub>−μ)"
    "<sup>T</sup>; they vanish at the closed form μ = x̄, Σ = S (the biased, 1/n covariance). Below, the digits are "
    "projected on their first two principal directions, fitted in closed form, and fitted again from N(0, I) by "
    "gradient ascent along these analytic gradients (plain, and preconditioned by the Fisher metric: the natural "
    "gradient). The gap of the mean negative log-likelihood to the closed form equals "
    "KL(q<sub>MLE</sub>‖q<sub>t</sub>).")


def pooled_bits(ctx: TourContext, n: int) -> torch.Tensor:
    """Digits average-pooled to 2×2 and thresholded at 0.5: (n, 4) in {0, 1}, 16 possible states."""
    x = ctx.digits.x_train[:n, None].to(torch.float64)  # (n, 1, 8, 8)
    return (torch.nn.functional.avg_pool2d(x, 4)[:, 0].reshape(len(x), 4) > 0.5).long()


def principal_plane(ctx: TourContext, n: int) -> torch.Tensor:
    """The digits (n, 64) projected on their first two principal directions: (n, 2) float64 scores."""
    x = ctx.digits.x_train[:n].reshape(min(n, len(ctx.digits.x_train)), -1).to(torch.float64)
    centred = x - x.mean(0)
    _, _, vt = torch.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T


def divergence_numbers(ctx: TourContext, n: int) -> dict[str, float]:
    """KL(p0‖q) for 2×2 binarised digits and q the product of the pixel marginals, computed two ways."""
    from kakusan.divergence import empirical_probs, entropy, kl_divergence, mean_log_likelihood, state_index

    bits = pooled_bits(ctx, n)
    marg = bits.to(torch.float64).mean(0)  # (4,) P(pixel on)
    states = ((torch.arange(16)[:, None] >> torch.arange(3, -1, -1)) & 1).to(torch.float64)  # (16, 4), index order
    q = (states * marg + (1 - states) * (1 - marg)).prod(1)  # (16,)
    idx = state_index(bits, 2)
    p0 = empirical_probs(idx, 16)
    return {
        "2×2 digits: H(p0) (nats)": float(entropy(p0)),
        "2×2 digits: mean log q, independent pixels (nats)": float(mean_log_likelihood(idx, q)),
        "2×2 digits: KL(p0‖q) (nats)": float(kl_divergence(p0, q)),
        "2×2 digits: −H(p0) − mean log q (nats)": float(-entropy(p0) - mean_log_likelihood(idx, q)),
        "2×2 digits: KL(q‖p0) (nats, asymmetric)": float(kl_divergence(q, p0)),
    }


def section(ctx: TourContext) -> Section:
    from kakusan.gaussian import fit_gradient, fit_mle, kl_gaussians
    from kakusan.report import figures

    n = 300 if ctx.size == "tiny" else len(ctx.digits.x_train)
    steps = 200 if ctx.size == "tiny" else 2000
    sec = Section("The KL divergence and the Gaussian: maximum likelihood in closed form and by gradient",
                  paragraphs=[INTRO, GAUSS])
    sec.numbers.update(divergence_numbers(ctx, n))

    z = principal_plane(ctx, n)  # (n, 2)
    mle = fit_mle(z)
    fits = {m: fit_gradient(z, steps=steps, lr=0.1, method=m) for m in ("plain", "natural")}
    with torch.no_grad():
        nll_mle = float(-mle.log_prob(z).mean())

        def log_density(points):
            return mle.log_prob(torch.from_numpy(points)).numpy()

        sec.figures.append((figures.density_contour(log_density, z, ctx.figure("gaussian_contour.png"),
                                                    title=f"MLE Gaussian, digits on PC1–PC2 (n={n})",
                                                    xlabel="PC 1", ylabel="PC 2"),
                            "The maximum-likelihood Gaussian of the digits projected on two principal directions: one "
                            "Gaussian cannot see the clusters of the ten digit classes (that takes hidden variables)."))
    curves = {f"{m} gradient ({f.steps} steps)": f.nll for m, f in fits.items()}
    sec.figures.append((figures.line_plot(curves, ctx.figure("gaussian_nll.png"), ylabel="mean NLL (nats)",
                                          title="gradient fit from N(0, I)", hlines={"closed form": nll_mle}),
                        "Mean negative log-likelihood during the gradient fits, converging to the closed form."))
    gaps = {m: (f.nll - nll_mle).clamp_min(1e-16) for m, f in fits.items()}
    sec.figures.append((figures.line_plot(gaps, ctx.figure("gaussian_kl_gap.png"), logy=True,
                                          ylabel="NLL − NLL_MLE = KL(q_MLE‖q_t) (nats)", title="distance to the MLE"),
                        "The gap to the closed form, which is exactly KL(q<sub>MLE</sub>‖q<sub>t</sub>), "
                        "on a log scale."))
    sec.numbers.update({
        "Gaussian on PC1–PC2: samples": n,
        "Gaussian on PC1–PC2: mean log-likelihood, closed form (nats)": -nll_mle,
        **{f"Gaussian: KL(closed form‖{m} gradient fit) (nats)": float(kl_gaussians(mle, f.model).detach())
           for m, f in fits.items()},
        **{f"Gaussian: {m} gradient steps (converged: {f.converged})": f.steps for m, f in fits.items()},
    })
    return sec
