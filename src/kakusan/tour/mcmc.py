"""Tour section: MCMC and replica exchange on a spin glass whose exact answers are known."""

from __future__ import annotations

from kakusan.tour import Section, TourContext


def section(ctx: TourContext) -> Section:
    from kakusan.boltzmann import exact, instances
    from kakusan.mcmc import HeatBath, diagnostics, random_spins, run_chain
    from kakusan.mcmc.ladders import adapt_ladder, geometric_ladder, ladder_log_z
    from kakusan.mcmc.tempering import ReplicaExchange, run_tempering
    from kakusan.report import figures

    tiny = ctx.size == "tiny"
    n, beta, n_replicas, chains = (12, 2.5, 8, 8) if tiny else (16, 3.0, 12, 16)
    steps, burn_in = (600, 100) if tiny else (3000, 300)
    # a fixed instance on which single chains are visibly stuck (R-hat of m ≈ 2–3); the chains use ctx.generator
    unit = instances.sherrington_kirkpatrick(n, beta=1.0, seed=1)  # couplings at β = 1; the ladder goes to β
    glass = instances.sherrington_kirkpatrick(n, beta=beta, seed=1)  # the same model with β folded in
    truth = exact.exact_stats(glass)
    sec = Section("MCMC and replica exchange: sampling a spin glass with known answers")
    sec.paragraphs.append(
        f"An SK spin glass with N = {n} spins at β = {beta}, far below its transition at β = 1: exact enumeration "
        "gives the answers. Single-site heat-bath chains find a low-energy state and stay near it; replica "
        f"exchange runs {n_replicas} copies at β from 0.1 to {beta}, and neighbours swap temperatures with "
        "probability min(1, e<sup>(β<sub>i</sub>−β<sub>j</sub>)(E<sub>i</sub>−E<sub>j</sub>)</sup>), so each copy "
        "wanders to high temperature, crosses the barriers there and comes back.")

    # 1. single chains at β: stuck
    hb = HeatBath(glass)
    single = run_chain(hb, hb.init(random_spins(chains, n, generator=ctx.generator)), steps, burn_in=burn_in,
                       generator=ctx.generator)

    # 2. replica exchange on a geometric ladder, then on the adapted one
    pt = ReplicaExchange(HeatBath(unit), geometric_ladder(0.1, beta, n_replicas), n_systems=chains)
    state = pt.init(random_spins(pt.n_chains, n, generator=ctx.generator))
    geo = run_tempering(pt, state, steps, burn_in=burn_in, generator=ctx.generator,
                        observables=("energy", "magnetization", "walk"))
    state, _ = adapt_ladder(pt, geo.state, rounds=4 if tiny else 8, steps=steps // 8, growth=1.2,
                                  generator=ctx.generator)
    adapted = run_tempering(pt, state, steps, generator=ctx.generator, observables=("energy", "magnetization"))

    e_pt, m_pt = geo.energy[:, :, -1] * beta, geo["magnetization"][:, :, -1]
    shown = min(steps, 200)
    sec.figures.append((figures.line_plot(
        {"PT system 0": m_pt[:shown, 0], **{f"single chain {c}": single["magnetization"][:shown, c] for c in range(2)}},
        ctx.figure("mcmc_magnetization.png"), xlabel="sweep", ylabel="m = (1/N) Σ x_k",
        title=f"magnetisation at β = {beta} (exact ⟨m⟩ = 0)"),
        "Magnetisation at the lowest temperature: single chains keep the sign they started with; PT systems "
        "visit both mirror images of the ground state."))
    temps = (0, n_replicas // 2, n_replicas - 1)
    sec.figures.append((figures.line_plot(
        {f"β = {float(pt.betas[t]):.2f}": geo.energy[: shown // 2, 0, t] for t in temps},
        ctx.figure("mcmc_energy.png"), xlabel="sweep", ylabel="E(x), couplings at β = 1",
        hlines={f"exact ⟨E⟩, β = {float(pt.betas[t]):.2f}": exact.exact_stats(unit, beta=float(pt.betas[t])).energy_mean
                for t in temps},
        title="PT energy traces at three temperatures"),
        "Energy traces of one PT system at three temperatures, with the exact means from enumeration."))
    lags = min(steps, 200)
    sec.figures.append((figures.line_plot(
        {"single chains": diagnostics.autocorrelation(single["magnetization"])[:lags],
         "replica exchange": diagnostics.autocorrelation(m_pt)[:lags]},
        ctx.figure("mcmc_autocorrelation.png"), xlabel="lag (sweeps)", ylabel="ρ(t) of m",
        title="autocorrelation of the magnetisation"),
        "Autocorrelation of the magnetisation: it never decays for single chains; PT forgets in a few sweeps."))
    sec.figures.append((figures.line_plot(
        {"geometric ladder": geo.stats.acceptance, "adapted ladder": adapted.stats.acceptance},
        ctx.figure("mcmc_swaps.png"), xlabel="pair t, t + 1 (t = 0: hottest)",
        ylabel="swap acceptance", title="swap acceptance per pair"),
        "Swap acceptance of each neighbouring pair, geometric ladder and the ladder adapted to equal acceptance."))
    walk = geo["walk"][: min(steps, 200), 0]  # (steps, R) system 0
    sec.figures.append((figures.line_plot(
        {f"replica {r}": walk[:, r] for r in (0, n_replicas // 2, n_replicas - 1)},
        ctx.figure("mcmc_walk.png"), xlabel="sweep", ylabel="temperature index (0 = hottest)",
        title="replica walks through the ladder"),
        "Three replicas of one system travelling through the temperatures: each round trip carries a "
        "configuration across the barriers."))

    log_z = ladder_log_z(pt.betas, geo.energy, log_z0=0.0, method="bar")  # relative to β_0 = 0.1
    exact_dz = truth.log_z - exact.log_z(unit, beta=float(pt.betas[0]))
    est_single, est_pt = diagnostics.estimate(single["energy"]), diagnostics.estimate(e_pt)
    sec.numbers.update({
        "exact ⟨E⟩": truth.energy_mean,
        "single chains ⟨E⟩ ± MCSE": f"{float(est_single.mean):.4f} ± {float(est_single.error):.4f}",
        "replica exchange ⟨E⟩ ± MCSE": f"{float(est_pt.mean):.4f} ± {float(est_pt.error):.4f}",
        "R-hat of m: single chains": float(diagnostics.rhat(single["magnetization"])),
        "R-hat of m: replica exchange": float(diagnostics.rhat(m_pt)),
        "round trips per 10⁴ sweeps: geometric": geo.stats.round_trips_per_10k,
        "round trips per 10⁴ sweeps: adapted": adapted.stats.round_trips_per_10k,
        "swap acceptance min/max: geometric": f"{float(geo.stats.acceptance.min()):.2f} / "
                                              f"{float(geo.stats.acceptance.max()):.2f}",
        "swap acceptance min/max: adapted": f"{float(adapted.stats.acceptance.min()):.2f} / "
                                            f"{float(adapted.stats.acceptance.max()):.2f}",
        "log Z(β) − log Z(0.1) by BAR ± error": f"{float(log_z.log_z[-1]):.4f} ± {float(log_z.error[-1]):.4f}",
        "log Z(β) − log Z(0.1) exact": exact_dz,
    })
    return sec
