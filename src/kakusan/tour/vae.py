"""Tour section: the variational autoencoder on the digits — the ELBO, the IWAE bound against k, a 2-latent map."""

from __future__ import annotations

import torch

from kakusan.tour import Section, TourContext

INTRO = (
    "EM maximises a Jensen bound on log p(x) with the exact posterior in the bound; a VAE keeps the bound and "
    "replaces the posterior by an encoder q(z|x), trained together with the decoder p(x|z): log p(x) ≥ ELBO = "
    "E<sub>q</sub>[log p(x|z)] − KL(q(z|x) ‖ p(z)) = log p(x) − KL(q(z|x) ‖ p(z|x)). Gradients pass through "
    "the draw z = μ + σε (the reparameterisation trick). Training images are binarised anew at every step; the test "
    "images once, with seed 0.")
BOUND = (
    "Averaging k importance weights p(x, z<sub>i</sub>)/q(z<sub>i</sub>|x) inside the logarithm gives the IWAE "
    "bound L<sub>k</sub>: L<sub>1</sub> is the ELBO, L<sub>k</sub> rises with k and reaches log p(x) as k → ∞, "
    "so the largest k gives the negative log-likelihood estimate.")
HIERARCHY = (
    "A hierarchical VAE stacks latent layers, p(x, z<sub>1</sub>, z<sub>2</sub>) = p(z<sub>2</sub>) "
    "p(z<sub>1</sub>|z<sub>2</sub>) p(x|z<sub>1</sub>), and its ELBO charges each layer its own KL, "
    "KL(q(z<sub>l</sub>|·) ‖ p(z<sub>l</sub>|z<sub>l+1</sub>)). A unit whose posterior equals its prior pays "
    "nothing, so units — often whole upper layers — that the decoder does not need collapse; the active-unit "
    "count per layer shows it.")
TEST_SEED = 0  # the test images are binarised once, with this seed


def _train(model, x_train, steps: int, lr: float, seed: int, warmup: int = 0):
    from kakusan.train import TrainConfig, fit
    from kakusan.vae import ELBO, dynamic_binarisation

    config = TrainConfig(steps=steps, batch_size=100, log_every=max(1, steps // 10), ema_decays=(0.99,),
                         seed=seed, progress=False)
    result = fit(model, ELBO(warmup_steps=warmup), x_train, torch.optim.Adam(model.parameters(), lr=lr), config,
                 transform=dynamic_binarisation)
    result.ema.copy_to(model)  # the EMA weights are the ones evaluated and drawn from
    return model.eval(), result.seconds


def _vae(n_latent: int, hidden: tuple[int, ...], seed: int):
    from kakusan.vae import VAE, MLPConfig, VAEConfig

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return VAE(VAEConfig((8, 8), n_latent, MLPConfig(hidden), MLPConfig(hidden)))


def section(ctx: TourContext) -> Section:
    from kakusan.data import stochastic_binarise
    from kakusan.evaluate import Estimate
    from kakusan.report import vae as report
    from kakusan.vae import diagnostics

    tiny = ctx.size == "tiny"
    digits = ctx.digits
    x_train, test = digits.x_train, stochastic_binarise(digits.x_test, generator=TEST_SEED)
    seed = int(torch.randint(1 << 30, (1,), generator=ctx.generator))
    n_latent, hidden, steps, lr = (8, (64,), 150, 3e-3) if tiny else (16, (200, 200), 3000, 1e-3)
    ks = (1, 5, 50) if tiny else (1, 5, 50, 500, 5000)
    model, seconds = _train(_vae(n_latent, hidden, seed), x_train, steps, lr, seed)
    with torch.no_grad():
        elbo = model.elbo(test, generator=ctx.generator, n_samples=10).elbo
        bounds = {k: Estimate.of_mean(model.iwae_bound(test, k, generator=ctx.generator), f"IWAE k={k}")
                  for k in ks}
        kl = diagnostics.kl_per_unit(model, test, generator=ctx.generator)
        active = diagnostics.active_units(model, test)
    nll = bounds[ks[-1]]
    sec = Section("Variational autoencoders: the ELBO, the IWAE bound, a latent map and a hierarchy",
                  paragraphs=[INTRO, BOUND, HIERARCHY])
    sec.figures.append((report.bound_figure({k: (b.value, b.stderr) for k, b in bounds.items()},
                                            ctx.figure("vae_bound.png"), elbo=float(elbo.mean()),
                                            title=f"{n_latent}-latent VAE, {len(test)} test digits"),
                        "The IWAE bound L<sub>k</sub> rises with k towards log p(x); the error bars (±2 s.e. across "
                        "examples) are mostly the spread between digits, shared by every k."))
    shape = (8, 8)
    sec.figures.append((report.samples_figure(model.sample(64, generator=ctx.generator), ctx.figure("vae_samples.png"),
                                              shape), "Samples: E[x|z] for z ~ N(0, I) (pixel probabilities)."))
    sec.figures.append((report.reconstructions_figure(test[:16], model.reconstruct(test[:16]),
                                                      ctx.figure("vae_reconstructions.png"), shape),
                        "Binarised test digits (top) and E[x|z] at the mode of q(z|x) (bottom)."))
    sec.figures.append((report.kl_units_figure(kl, ctx.figure("vae_kl_units.png"),
                                               active={g: a.variance > a.threshold for g, a in active.items()}),
                        "KL(q ‖ p) of each latent unit; grey units are inactive (Cov<sub>x</sub>(E<sub>q</sub>[z|x]) "
                        "≤ 0.01): the ELBO charges every unit its KL, so units the decoder does not need collapse "
                        "to the prior."))
    flat, flat_seconds = _train(_vae(2, hidden, seed + 1), x_train, steps // 2, 3e-3, seed + 1)
    sec.figures.append((report.latent_map_figure(flat, test, digits.y_test, ctx.figure("vae_latent_map.png"),
                                                 grid=12, class_names=digits.class_names),
                        "A 2-latent VAE: the decoder over the latent plane, and where the encoder puts the test "
                        "digits."))
    with torch.no_grad():
        flat_elbo = float(flat.elbo(test, generator=ctx.generator, n_samples=10).elbo.mean())
    sec.numbers.update({
        f"{n_latent}-latent VAE: test ELBO (nats)": round(float(elbo.mean()), 3),
        **{f"IWAE k={k} (nats)": round(b.value, 3) for k, b in bounds.items()},
        f"NLL estimate −IWAE-{ks[-1]} (nats)": str(Estimate(-nll.value, nll.stderr, nll.n, nll.method)),
        "KL(q ‖ p) (nats)": round(float(kl["z"].sum()), 3),
        "active units": f"{active['z'].n_active} of {n_latent}",
        "training steps": steps, "training time (s)": round(seconds, 2),
        "2-latent VAE: test ELBO (nats)": round(flat_elbo, 3), "2-latent training time (s)": round(flat_seconds, 2),
    })
    _hierarchical(ctx, sec, x_train, test, seed + 2)
    return sec


def _hierarchical(ctx: TourContext, sec: Section, x_train, test, seed: int) -> None:
    """A 2-layer Markov HVAE: its KL per layer and unit, active units per layer, its bounds."""
    from kakusan.report import vae as report
    from kakusan.vae import diagnostics
    from kakusan.vae.hierarchical import HVAE, HVAEConfig

    tiny = ctx.size == "tiny"
    latents, hidden, steps, k = ((8, 4), (64, 32), 150, 50) if tiny else ((16, 8), (200, 100), 1500, 500)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = HVAE(HVAEConfig((8, 8), latents, hidden, inference="markov"))
    model, seconds = _train(model, x_train, steps, 3e-3, seed, warmup=steps // 5)
    with torch.no_grad():
        elbo = float(model.elbo(test, generator=ctx.generator, n_samples=10).elbo.mean())
        iwae = float(model.iwae_bound(test, k, generator=ctx.generator).mean())
        kl = diagnostics.kl_per_unit(model, test, generator=ctx.generator)
        active = diagnostics.active_units(model, test, generator=ctx.generator)
    sec.figures.append((report.kl_units_figure(kl, ctx.figure("hvae_kl_units.png"),
                                               active={g: a.variance > a.threshold for g, a in active.items()},
                                               title=f"2-layer hierarchical VAE {latents}"),
                        "The hierarchical VAE's KL per unit, layer by layer (z1 next to the data): the upper layer "
                        "keeps few active units."))
    sec.numbers.update({
        f"hierarchical VAE {latents}: test ELBO (nats)": round(elbo, 3),
        f"hierarchical VAE: IWAE k={k} (nats)": round(iwae, 3),
        **{f"hierarchical VAE: KL {g} (nats)": round(float(v.sum()), 3) for g, v in kl.items()},
        **{f"hierarchical VAE: active units {g}": f"{a.n_active} of {len(a.variance)}" for g, a in active.items()},
        "hierarchical VAE: training time (s)": round(seconds, 2),
    })
