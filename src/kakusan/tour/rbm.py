"""Tour section: the restricted Boltzmann machine on the digits — CD, PCD and PT, with exact likelihoods."""

from __future__ import annotations

import torch

from kakusan.tour import Section, TourContext

INTRO = (
    "An RBM couples visible units v and hidden units h only across the two layers, E(v,h) = −vᵀWh − bᵀv − cᵀh, "
    "so each layer is conditionally independent given the other: p(h<sub>j</sub>=1|v) = σ(c<sub>j</sub> + "
    "(Wᵀv)<sub>j</sub>), and the hidden units sum out in closed form into the free energy F(v) = −bᵀv − "
    "Σ<sub>j</sub> softplus(c<sub>j</sub> + (Wᵀv)<sub>j</sub>), q(v) = e<sup>−F(v)</sup>/Z. The gradient of the "
    "KL divergence is ⟨∂F/∂θ⟩<sub>data</sub> − ⟨∂F/∂θ⟩<sub>model</sub>; the loss mean F(v<sub>data</sub>) − "
    "mean F(v<sub>neg</sub>) has it, and the three methods differ only in where the negative samples come from: "
    "k Gibbs sweeps from the data (CD), persistent chains (PCD), or persistent replica-exchange systems (PT).")
EXACT = (
    "With few hidden units, Z is exact: summing the visible units out too leaves a sum over the 2<sup>n</sup> "
    "hidden states, so every curve below is the exact mean log-likelihood, and annealed importance sampling "
    "can be checked against it.")


def section(ctx: TourContext) -> Section:
    from kakusan.data import binarise, flatten
    from kakusan.rbm import BernoulliRBM, exact
    from kakusan.rbm.ais import ais, default_betas, reverse_ais
    from kakusan.rbm.fit import RBMTrainConfig, fit_rbm
    from kakusan.report.rbm import ais_figure, filters_figure, samples_figure
    from kakusan.report import figures

    tiny = ctx.size == "tiny"
    train, test = binarise(flatten(ctx.digits.x_train)), binarise(flatten(ctx.digits.x_test))
    n_hidden, epochs = (8, 4) if tiny else (16, 25)
    methods = ("pcd",) if tiny else ("cd", "pcd", "pt")
    seed = int(torch.randint(1 << 30, (1,), generator=ctx.generator))
    curves, models, numbers = {}, {}, {}
    for method in methods:
        model = BernoulliRBM(64, n_hidden, seed=seed).init_from_data(train)
        config = RBMTrainConfig(method=method, epochs=epochs, batch_size=50, lr=0.1, lr_schedule="linear",
                                weight_decay=0.0, n_chains=50, beta_min=0.3, seed=seed, progress=False)
        result = fit_rbm(model, train, config, test=test)
        curves[f"{method} (test)"] = [e["test_log_likelihood"] for e in result.evaluations]
        models[method] = model
        numbers[f"{method}: test log-likelihood, exact (nats)"] = curves[f"{method} (test)"][-1]
        numbers[f"{method}: training time (s)"] = round(result.seconds, 2)
    epochs_axis = [e["epoch"] for e in result.evaluations]
    sec = Section("The restricted Boltzmann machine: CD, PCD and PT with exact likelihoods", paragraphs=[INTRO, EXACT])
    sec.figures.append((figures.line_plot(curves, ctx.figure("rbm_loglik.png"), x=epochs_axis, xlabel="epoch",
                                          ylabel="mean log-likelihood (nats)",
                                          title=f"64-{n_hidden} RBM on binarised digits"),
                        "Exact test log-likelihood during training (log Z by enumerating the hidden layer). One "
                        "training seed, so the curves do not rank the methods: benchmarks/results_seeds.md repeats "
                        "the comparison over 16 seeds."))
    best = models["pcd"]
    sec.figures.append((filters_figure(best, (8, 8), ctx.figure("rbm_filters.png")),
                        "Filters: each hidden unit's weights as an 8×8 image (grey 0, white positive, black negative)."))
    samples = best.sample(36, ctx.generator, n_steps=200 if tiny else 1000, mean=True)
    sec.figures.append((samples_figure(samples.reshape(-1, 8, 8), ctx.figure("rbm_samples.png"), (8, 8)),
                        "Samples of the PCD model: E[v | h] after long block-Gibbs chains from random starts."))
    lz = exact.log_z(best)
    sweep = (50, 500) if tiny else (100, 1000, 14500)
    runs: dict[str, list] = {"forward": [], "reverse": []}
    # 16 hidden units: exact model samples, so reverse AIS is an upper bound on average
    start = exact.sample(best, 100, ctx.generator)
    for n in sweep:
        betas = default_betas(max(1, n * 500 // 14500), max(1, n * 4000 // 14500), max(1, n * 10000 // 14500))
        runs["forward"].append(ais(best, train, n_runs=100, betas=betas, generator=ctx.generator))
        runs["reverse"].append(reverse_ais(best, start, train, betas=betas, generator=ctx.generator))
    sec.figures.append((ais_figure(runs, lz, ctx.figure("rbm_ais.png"), title="AIS against exact log Z (PCD model)"),
                        "Forward AIS (low on average) and reverse AIS from exact model samples, each ±2 standard "
                        "errors (delta method over 100 runs). Both are bounds only on average, so a single pair need "
                        "not bracket the exact log Z; with few inverse temperatures the error bars are large and may "
                        "still miss it."))
    fwd, rev = runs["forward"][-1], runs["reverse"][-1]
    numbers.update({"pcd: log Z exact": lz, "pcd: log Z forward AIS (± 1 s.e.)": f"{fwd.log_z:.4f} ± {fwd.log_z_stderr:.4f}",
                    "pcd: log Z reverse AIS (± 1 s.e.)": f"{rev.log_z:.4f} ± {rev.log_z_stderr:.4f}",
                    "AIS Pareto k̂ forward / reverse": f"{fwd.tail.khat:.2f} / {rev.tail.khat:.2f}",
                    "AIS inverse temperatures": fwd.n_betas})
    sec.numbers.update(numbers)
    return sec
