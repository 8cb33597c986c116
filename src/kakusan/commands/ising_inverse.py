"""``kakusan ising fit --method nmf|tap|sm|plm|mpf``: the MCMC-free learners, one solver call, no training loop."""

from __future__ import annotations

import argparse

from kakusan.commands.ising_common import EXACT_CHECK_SPINS


def run_inverse_fit(args: argparse.Namespace, data, truth, out) -> int:
    """``--method nmf|tap|sm|plm|mpf``: one call of :func:`kakusan.learn.inverse.solve`, no training loop."""
    import torch

    from kakusan.boltzmann import kl_divergence, save_ising_npz
    from kakusan.checkpoint import save_model
    from kakusan.errors import KakusanError
    from kakusan.learn.inverse import solve
    from kakusan.report import figures
    from kakusan.report.run_dir import RunDir

    n = data.shape[1]
    regularised = args.method in ("plm", "mpf")
    if not regularised and (args.l1 or args.l2):
        raise KakusanError(f"--l1/--l2 apply to --method plm, mpf and the moment-matching methods, not {args.method}")
    options = {"l1": args.l1, "l2": args.l2} if regularised else {}
    if getattr(args, "asymmetric", False):
        if args.method != "plm":
            raise KakusanError("--asymmetric is an option of --method plm")
        options["symmetric"] = False
    run = RunDir.create("ising-fit", args.run_dir, args.runs_root)
    run.write_config({"command": "ising fit", "class": "IsingModel", "n_visible": n, "method": args.method,
                      "options": options, "data": args.data, "truth": args.truth}, argv=args.argv)
    result = solve(data, args.method, **options)
    model = result.to_model()
    save_ising_npz(out, model)
    save_model(run.checkpoints, model)
    summary = {"method": result.method, "iterations": result.iterations, "converged": result.converged,
               "wall_time": result.wall_time, "objective": result.objective, "message": result.message}
    figures.heatmap(result.J, run.figures / "couplings_matrix.png", title=f"learned J ({args.method})")
    if n <= EXACT_CHECK_SPINS:
        summary["kl"] = kl_divergence(model, data)
    if truth is not None:
        iu = torch.triu_indices(n, n, 1)
        tJ, lJ = truth.couplings().detach()[iu[0], iu[1]], result.J.cpu()[iu[0], iu[1]]
        figures.scatter_plot(tJ, lJ, run.figures / "couplings.png", xlabel="true J", ylabel="learned J")
        summary["relative_error_J"] = float((lJ - tJ).norm() / tJ.norm().clamp_min(1e-300))
    run.write_json("summary.json", summary)
    status = "" if result.converged else f" (not converged: {result.message})"
    kl = f"KL(p0||q) = {summary['kl']:.6g} nats; " if "kl" in summary else ""
    print(f"{args.method}: {kl}{result.wall_time:.3g} s{status}; wrote {out}; run: {run.path}")
    return 0
