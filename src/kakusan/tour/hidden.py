"""Tour section: hidden variables — a Gaussian mixture by EM (Jensen's bound as the surrogate)."""

from __future__ import annotations

import torch

from kakusan.tour import Section, TourContext
from kakusan.tour.gaussian import principal_plane


def section(ctx: TourContext) -> Section:
    from kakusan.gaussian import fit_mle
    from kakusan.mixture import GaussianMixture
    from kakusan.optim.em import fit_em
    from kakusan.report import figures

    n = 600 if ctx.size == "tiny" else 1500
    x = principal_plane(ctx, n)  # (n, 2) float64
    k = 4 if ctx.size == "tiny" else 8
    model = GaussianMixture(k, 2)
    result = fit_em(model, x, max_iter=200, tol=1e-8, generator=ctx.generator)
    single = fit_mle(x)
    with torch.no_grad():
        ll_single = float(single.log_prob(x).mean())
    sec = Section("Hidden variables: a Gaussian mixture by EM")
    sec.paragraphs.append(
        "A mixture q(x) = Σ<sub>k</sub> π<sub>k</sub> N(x | μ<sub>k</sub>, Σ<sub>k</sub>) has a hidden label. "
        "Jensen's inequality gives a lower bound on log q(x) that touches it when the label is averaged over its "
        "posterior (the E-step); maximising the bound in closed form (the M-step) can only raise the likelihood. "
        "EM is the surrogate method of the previous section with Jensen's bound in place of the quadratic one.")
    sec.figures.append((figures.density_contour(lambda z: model.log_prob(torch.as_tensor(z)).detach().numpy(), x,
                                                ctx.figure("em_contour.png"), xlabel="PC 1", ylabel="PC 2",
                                                title=f"{k}-component mixture by EM"),
                        f"The {k}-component mixture fitted by EM to the digits on their first two principal axes."))
    sec.figures.append((figures.line_plot({"EM": result.log_likelihood}, ctx.figure("em_loglik.png"),
                                          xlabel="EM iteration", ylabel="mean log-likelihood (nats)",
                                          hlines={"one Gaussian": ll_single}),
                        "Mean log-likelihood per EM iteration: it never decreases."))
    sec.numbers.update({
        "mixture: mean log-likelihood (nats)": result.log_likelihood[-1],
        "one Gaussian: mean log-likelihood (nats)": ll_single,
        "EM iterations (converged)": f"{result.n_iter} ({result.converged})",
        "largest decrease of the log-likelihood over EM steps": result.max_decrease,
    })
    return sec
