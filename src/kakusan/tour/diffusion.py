"""Tour section: diffusion models — samplers checked against a closed form, a learned 2-D model's exact likelihood,
and a class-conditional UNet on the digits."""

from __future__ import annotations

import math

import torch

from kakusan.tour import Section, TourContext

INTRO = (
    "A diffusion model is a hierarchical VAE whose encoder is fixed: q(x<sub>t</sub>|x<sub>0</sub>) = "
    "N(α<sub>t</sub> x<sub>0</sub>, σ<sub>t</sub><sup>2</sup> I) adds noise until nothing of the data is left, and "
    "the decoder p(x<sub>t−1</sub>|x<sub>t</sub>) is learned by predicting the noise ε from x<sub>t</sub>. The "
    "MMSE noise prediction is the score of the noised data, −σ<sub>t</sub> ∇ log q<sub>t</sub>, so sampling "
    "is solving an ODE (or SDE) backwards, and the same ODE gives the exact likelihood.")
SAMPLERS = (
    "For Gaussian-mixture data the noised marginals are mixtures, so the exact noise predictor is known in closed "
    "form. Driving each sampler with it isolates the solver's own error: DDIM is first order in the number of "
    "steps, DPM-Solver++(2M) and Heun second order (the slopes below are measured, not assumed).")
LEARNED = (
    "A small MLP denoiser trained on 2-D mixture data (L<sub>simple</sub>, v-prediction); its probability-flow "
    "ODE gives the exact log-likelihood of the learned model on held-out points, next to the mixture's entropy "
    "(the best any model can do).")
DIGITS = (
    "A class-conditional UNet on the 8×8 digits (labels dropped 10 % of the time, so one network is both the "
    "conditional and the unconditional model). Each row of samples below is one class, drawn with "
    "DPM-Solver++(2M) in 20 steps and classifier-free guidance w = 2.")


def _sampler_orders(ctx: TourContext, sec: Section, tiny: bool) -> None:
    from kakusan.diffusion import MixtureTruth, Schedule
    from kakusan.diffusion.samplers import get_sampler, nfe
    from kakusan.report.figures import line_plot

    truth = MixtureTruth.example(2, n_components=3, schedule=Schedule("linear", 1000), seed=0)
    x_T = torch.randn(200 if tiny else 1000, 2, generator=ctx.generator, dtype=torch.float64)

    def state_at(name: str, steps: int, t_stop: int = 200):
        """The sampler's state when it reaches t = 200 (on every grid used here): the solver's own error, without
        the final jump to σ = 0, whose O(1/N) error on a grid uniform in t would mask the order."""
        seen = {}
        get_sampler(name)(truth, x_T, truth.schedule, steps, callback=lambda i, t, x, x0: seen.setdefault(round(t), x))
        return seen[t_stop]

    reference = state_at("dpm++2m", 1000)
    steps = (5, 10, 20, 40) if tiny else (5, 10, 20, 40, 50, 100)
    errors, xs, slopes = {}, {}, {}
    for name in ("ddim", "dpm++2m", "heun"):
        err = [float((state_at(name, s) - reference).norm(dim=1).mean()) for s in steps]
        errors[name], xs[name] = err, [nfe(name, s, truth.schedule) for s in steps]
        fit = torch.tensor([[math.log(s), 1.0] for s in steps[-3:]], dtype=torch.float64)
        slope = torch.linalg.lstsq(fit, torch.tensor([math.log(e) for e in err[-3:]], dtype=torch.float64)[:, None])
        slopes[name] = -float(slope.solution[0, 0])
    path = line_plot(errors, ctx.figure("diffusion_orders.png"), xs=xs, xlabel="network evaluations (NFE)",
                     ylabel="mean ‖x₂₀₀ − x₂₀₀(1000 steps)‖", logx=True, logy=True, marker="o",
                     title="ODE samplers with the exact mixture denoiser")
    sec.paragraphs.append(SAMPLERS)
    sec.figures.append((path, "Error of the state at t = 200 against the number of network evaluations, from the "
                              "same x<sub>T</sub>, with the exact denoiser (linear schedule): " +
                        ", ".join(f"{k} slope {v:.2f}" for k, v in slopes.items()) + " (in steps)."))
    sec.numbers.update({f"order of {k} (measured slope)": round(v, 2) for k, v in slopes.items()})


def _learned_2d(ctx: TourContext, sec: Section, tiny: bool, seed: int) -> None:
    from kakusan.diffusion import Diffusion, DiffusionConfig, MixtureTruth, MLPDenoiserConfig, ScheduleConfig
    from kakusan.diffusion.objectives import DiffusionLoss
    from kakusan.diffusion.ode import ode_nll
    from kakusan.report import diffusion as report
    from kakusan.train import TrainConfig, fit

    truth = MixtureTruth.example(2, n_components=3, seed=1)
    train = truth.sample(20_000, seed).float()
    test = truth.sample(200 if tiny else 500, seed + 1).float()
    steps = 300 if tiny else 1000
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Diffusion(DiffusionConfig((2,), ScheduleConfig("linear", 1000), "v", MLPDenoiserConfig(128, 3),
                                          shift=float(train.mean()), scale=float(train.std())))
    config = TrainConfig(steps=steps, batch_size=512, log_every=max(1, steps // 10), ema_decays=(1 - 10 / steps,),
                         seed=seed, progress=False)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / steps, 1))))
    result = fit(model, DiffusionLoss("simple"), train, opt, config, scheduler=sched)
    result.ema.copy_to(model)
    model.eval()
    nll = ode_nll(model, test, generator=ctx.generator, rtol=1e-4, atol=1e-4, unit="nats")
    entropy = truth.entropy_mc(100_000, generator=seed + 2)
    samples = model.sample(2000, ctx.generator, sampler="dpm++2m", steps=20)
    sec.paragraphs.append(LEARNED)
    sec.figures.append((report.scatter_figure(test if len(test) >= 1000 else truth.sample(1000, seed + 3), samples,
                                              ctx.figure("diffusion_2d.png")),
                        f"Mixture data and 2000 samples of the learned model (DPM-Solver++(2M), 20 steps); PF-ODE "
                        f"NLL {nll.value:.3f} ± {nll.stderr:.3f} nats against the entropy {entropy:.3f}."))
    sec.numbers.update({"2-D model: PF-ODE test NLL (nats)": f"{nll.value:.3f} ± {nll.stderr:.3f}",
                        "2-D mixture entropy (nats)": round(entropy, 3),
                        "2-D model: training time (s)": round(result.seconds, 2)})


def _digits(ctx: TourContext, sec: Section, tiny: bool, seed: int) -> None:
    from kakusan.diffusion import Diffusion, DiffusionConfig, ScheduleConfig
    from kakusan.diffusion.objectives import DiffusionLoss
    from kakusan.diffusion.unet import UNetConfig
    from kakusan.diffusion.vlb import vlb_estimate
    from kakusan.report import diffusion as report
    from kakusan.train import TrainConfig, fit

    digits = ctx.digits
    x, y = digits.x_train, digits.y_train.long()
    steps = 60 if tiny else 500
    unet = UNetConfig(channels=(16, 32), attention=(False, True))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Diffusion(DiffusionConfig((8, 8), ScheduleConfig("cosine", 1000), "eps", unet, n_classes=10,
                                          shift=0.5, scale=0.5, levels=17))
    config = TrainConfig(steps=steps, batch_size=128, log_every=max(1, steps // 10), ema_decays=(1 - 10 / steps,),
                         seed=seed, progress=False)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    result = fit(model, DiffusionLoss("simple", cond_drop=0.1), (x, y), opt, config)
    result.ema.copy_to(model)
    model.eval()
    labels = torch.arange(10).repeat_interleave(8)
    samples = model.sample(80, ctx.generator, sampler="dpm++2m", steps=20, labels=labels, guidance=2.0)
    test = digits.x_test[: 100 if tiny else 297]
    bound = vlb_estimate(model, test, cond=digits.y_test[: len(test)].long(), generator=ctx.generator,
                         n_t=10 if tiny else 50)
    bpd = bound.bits_per_dim(64)
    sec.paragraphs.append(DIGITS)
    sec.figures.append((report.samples_figure(samples, ctx.figure("diffusion_digits.png"), nrow=8),
                        "Class-conditional samples, one class per row (0 … 9), guidance w = 2."))
    sec.figures.append((report.forward_process_figure(model, test[:1], ctx.figure("diffusion_forward.png"),
                                                      generator=ctx.generator),
                        "The forward process on a test digit (top) and the model's x̂<sub>0</sub> from each noised "
                        "image (bottom)."))
    sec.numbers.update({"digits UNet: GFLOP per image": round(model.gflop_per_example(), 4),
                        "digits UNet: training steps": steps,
                        "digits UNet: training time (s)": round(result.seconds, 2),
                        "digits UNet: test VLB (bits/dim, 17-level pixels)": f"{bpd.value:.3f} ± {bpd.stderr:.3f}"})


def section(ctx: TourContext) -> Section:
    tiny = ctx.size == "tiny"
    seed = int(torch.randint(1 << 30, (1,), generator=ctx.generator))
    sec = Section("Diffusion models: samplers, the exact likelihood, and a class-conditional UNet",
                  paragraphs=[INTRO])
    _sampler_orders(ctx, sec, tiny)
    _learned_2d(ctx, sec, tiny, seed)
    _digits(ctx, sec, tiny, seed + 1)
    return sec
