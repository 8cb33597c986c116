"""Drive the peer RBM libraries ``rbms`` (0.6.0) and ``learnergy`` (2.0.2) for the RBM benchmarks.

Runs INSIDE its own virtualenv (``benchmarks/.peer-venv-rbm``, gitignored); it imports numpy, torch and the
peer library only, never kakusan. Subcommands:

* ``train``: train a Bernoulli-Bernoulli RBM on a 0/1 float32 array (rows x 784) with the library's own
  training API and write ``DIR/epoch_{e:03d}.npz`` after every epoch (``W`` visible x hidden, ``a`` visible
  bias, ``b`` hidden bias, all float64, convention E(v, h) = -v'Wh - a'v - b'h; ``train_wall_s`` and
  ``train_cpu_s`` cumulative, training only) plus one JSON line per epoch on stdout, and ``DIR/meta.json``.
* ``epoch``: time one training epoch (same settings) on ``--rows`` rows after a short warm-up; one JSON line.
* ``ais``: rbms only: build an rbms ``BBRBM`` from a saved ``.npz`` and run rbms' own AIS log Z estimator
  (``rbms.partition_function.ais.compute_partition_function_ais``); one JSON line.

How each library trains (read from the installed sources):

* rbms: the per-update body of ``rbms.training.pcd.train`` (what ``rbms train`` runs), reproduced call for
  call with the library's objects: ``RBMDataset.batch`` (a fresh random batch of ``--batch-size`` rows every
  update, without replacement inside a batch; rbms counts updates, not epochs, so one "epoch" here is
  ceil(rows / batch size) updates), ``BBRBM.init_chains`` on the batch, the ``PCD`` sampler (``--chains``
  persistent chains, ``--k`` Gibbs sweeps per update, chains initialised uniformly then given k sweeps as in
  ``_init_training``), ``BBRBM.compute_gradient`` and ``rbms.optim.setup_optim('sgd')`` (``torch.optim.SGD``,
  maximize=True, no momentum, no weight decay). Left out of the loop: the h5 checkpointing, tqdm and the
  ``torch.compile``'d pre-gradient hook, which is an empty no-op when L1 = L2 = 0 with no gradient
  normalisation or clipping. Initialisation is the library's (``BBRBM.init_parameters``: visible bias =
  logit of the data means, W ~ 1e-4 * N(0, 1), hidden bias 0). rbms' default gradient is *centered*
  (``--no_center`` off); this script uses the plain (non-centered) gradient unless ``--rbms-centered``.
* learnergy: ``learnergy.models.bernoulli.RBM.fit(dataset, batch_size, epochs=1)`` once per epoch, the
  dataset a ``torch.utils.data.TensorDataset`` (shuffled DataLoader, last batch may be partial). learnergy
  has Contrastive Divergence only (no persistent chains): it trains CD-k and ``--chains`` is ignored. SGD
  with momentum=0 and decay=0 (both can be turned off). Its ``fit`` also computes, on every batch, a
  reconstruction error and a one-bit-flip pseudo-likelihood (two extra free-energy evaluations); that is
  part of its training loop and so part of the timed time. Initialisation is the library's:
  W ~ 0.01 * N(0, 1), both biases 0.

AIS (rbms 0.6.0, ``compute_partition_function_ais(num_chains, num_beta, params)``): both arguments are
required, there is no default in the library. This script uses num_chains=1000 and num_beta=5000, the values
the rbms authors pass in their own callers (their PTT / AIS-trajectory code). The schedule is
``torch.linspace(0, 1, num_beta)`` (linear, so num_beta - 1 transitions), the base model is the RBM with W = 0
and hidden bias 0 but the model's own visible bias (log Z_0 = sum log(1 + e^a) + n_h log 2), the
intermediate models interpolate all parameters linearly, each transition is one Gibbs sweep
(h|v, v|h, h|v) at the previous beta followed by the weight update, and the log weights are accumulated in
float32. The chains start uniform, but the first sweep is at beta = 0 where v|h is exactly the base model, so
the estimator is a valid forward AIS. One estimate, no standard error.

Install recipe (what was run; torch first from the local CPU wheel, the peers with --no-deps so that no
CUDA torch is pulled; afterwards ``pip list`` shows torch 2.13.0+cpu)::

    cd /work/main
    python3.11 -m venv benchmarks/.peer-venv-rbm
    P=benchmarks/.peer-venv-rbm/bin/pip
    $P install torch==2.13.0
    $P install --no-deps --ignore-requires-python rbms==0.6.0
    $P install --no-deps learnergy==2.0.2
    $P install numpy==2.4.6 h5py==3.16.0 tqdm==4.70.1 matplotlib==3.11.2   # none of them depends on torch
    cat > benchmarks/.peer-venv-rbm/lib/python3.11/site-packages/sitecustomize.py <<'EOF'
    # Shim for rbms 0.6.0 (declares Python>=3.12, uses typing.override) on Python 3.11.
    import typing

    if not hasattr(typing, "override"):
        import typing_extensions

        typing.override = typing_extensions.override
    EOF
    $P list | grep -i torch        # torch 2.13.0+cpu

Needed at import: rbms imports h5py, tqdm, matplotlib (``rbms.plot``) and typing_extensions (installed with
torch) through the shim; learnergy imports matplotlib/Pillow. Not installed: scikit-image (learnergy uses it
only in ``learnergy.math.metrics``, which the RBM never imports) and torchvision (only learnergy's
"examples" extra). Examples::

    V=benchmarks/.peer-venv-rbm/bin/python
    $V benchmarks/peer_rbm.py train --lib rbms --train X.npy --epochs 5 --out /tmp/rbms_run
    $V benchmarks/peer_rbm.py epoch --lib learnergy --train X.npy --rows 6000 --threads 1
    $V benchmarks/peer_rbm.py ais --model /tmp/rbms_run/epoch_005.npz --data X.npy
"""

from __future__ import annotations

import os

os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # before torch is imported (it is imported lazily in main)

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

AIS_CHAINS = 1000  # rbms has no default: the authors' own callers use (num_chains=1000, num_beta=5000)
AIS_BETAS = 5000
N_CHECK = 16  # rows used by the convention check


# --------------------------------------------------------------------------------------------- helpers


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def check_conventions(lib: str, arrays, free_energy, p_h, p_v, v) -> dict:
    """Assert that the library's free energy and conditionals match E(v,h) = -v'Wh - a'v - b'h for the
    saved (W visible x hidden, a, b); return the largest deviations. The torch RNG state is restored
    afterwards (the libraries' conditionals also draw samples), so the check does not perturb training."""
    import torch

    state = torch.get_rng_state()
    try:
        return _check_conventions(lib, arrays, free_energy, p_h, p_v, v)
    finally:
        torch.set_rng_state(state)


def _check_conventions(lib: str, arrays, free_energy, p_h, p_v, v) -> dict:
    import numpy as np

    W, a, b = arrays
    vv = v.double().numpy()
    field = b + vv @ W
    ref = -(vv @ a) - np.logaddexp(0.0, field).sum(1)
    got = free_energy(v)
    # float32 library arithmetic, and rbms' softplus is log(1 + e^x) only below x = 10 (x above): allow both.
    tol = 1e-4 * np.maximum(1.0, np.abs(ref)) + 5e-5 * W.shape[1]
    dev_f = np.abs(got - ref)
    assert np.all(dev_f <= tol), f"{lib}: free energy mismatch {dev_f.max():.3g} (library {got[:3]}, ref {ref[:3]})"
    ph_ref = 1.0 / (1.0 + np.exp(-field))
    dev_h = np.abs(p_h(v) - ph_ref).max()
    assert dev_h < 1e-4, f"{lib}: p(h|v) mismatch {dev_h:.3g}"
    h = (ph_ref > 0.5).astype(np.float32)
    pv_ref = 1.0 / (1.0 + np.exp(-(a + h.astype(np.float64) @ W.T)))
    dev_v = np.abs(p_v(h) - pv_ref).max()
    assert dev_v < 1e-4, f"{lib}: p(v|h) mismatch {dev_v:.3g}"
    return {"free_energy_max_abs_dev": float(dev_f.max()), "p_h_max_abs_dev": float(dev_h),
            "p_v_max_abs_dev": float(dev_v)}


# --------------------------------------------------------------------------------------------- rbms


class RbmsTrainer:
    lib = "rbms"

    def __init__(self, x, args):
        import numpy as np
        import torch
        from rbms.bernoulli_bernoulli.classes import BBRBM
        from rbms.dataset.dataset_class import RBMDataset
        from rbms.optim import setup_optim
        from rbms.sampler import CD, PCD

        self.torch, self.np = torch, np
        n = x.shape[0]
        self.dataset = RBMDataset(data=x, labels=np.zeros(n, dtype=np.int64), weights=np.ones(n, dtype=np.float32),
                                  names=np.arange(n), dataset_name="peer_rbm", variable_type="bernoulli",
                                  device="cpu", dtype=torch.float32)
        self.batch_size = args.batch_size
        self.centered = args.rbms_centered
        self.updates_per_epoch = math.ceil(n / args.batch_size)
        params = BBRBM.init_parameters(num_hiddens=args.hidden, dataset=self.dataset, device="cpu",
                                       dtype=torch.float32)
        if args.method == "pcd":
            # as rbms.training.implement._init_training: uniform chains, then gibbs_steps sweeps
            chains = params.init_chains(num_samples=args.chains)
            chains = params.sample_state(chains=chains, n_steps=args.k)
            self.sampler = PCD(params=params, chains=chains, num_steps=args.k, beta=1.0)
        else:
            self.sampler = CD(params=params, num_steps=args.k, beta=1.0)
        params.init_grad()  # as _restore_training
        self.params = params
        self.optimizer = setup_optim("sgd", {"learning_rate": args.lr, "max_lr": args.lr, "scale_lr": False,
                                             "mult_optim": False, "optim": "sgd"}, params)
        self.effective_time = np.zeros(len(self.optimizer))
        self.method = f"{args.method}-{args.k}"
        self.notes = [
            f"{self.method} with {args.chains if args.method == 'pcd' else 'batch-size'} chains via rbms.sampler."
            f"{args.method.upper()}; plain SGD (torch.optim.SGD maximize=True, momentum 0, weight decay 0)",
            f"gradient {'centered (rbms default)' if self.centered else 'non-centered (rbms default is centered)'}",
            "rbms draws a fresh random batch every update (RBMDataset.batch); an epoch = ceil(rows/batch) updates",
            "init: rbms BBRBM.init_parameters (a = logit(data means), W ~ 1e-4 N(0,1), b = 0)",
        ]

    def update(self) -> None:
        """One gradient update: the loop body of rbms.training.pcd.train without saving/metrics/tqdm."""
        params, sampler, optimizer = self.params, self.sampler, self.optimizer
        batch = self.dataset.batch(self.batch_size)
        data, weights = batch["data"], batch["weights"]
        for opt in optimizer:
            opt.zero_grad(set_to_none=False)
        curr_batch = params.init_chains(num_samples=data.shape[0], weights=weights, start_v=data)
        parallel_chains = sampler.get_conf_grad(batch=data)
        params.compute_gradient(data=curr_batch, chains=parallel_chains, centered=self.centered)
        # pre_grad_update(input=None): empty torch.nn.Sequential here (no L1/L2/normalise/clip) -> skipped
        params.pre_grad_update()
        sampler.pre_grad_update()
        for opt in optimizer:
            opt.step()
        params.post_grad_update()
        sampler.post_grad_update(params=params)
        self.effective_time += self.np.asarray([opt.param_groups[0]["lr"] for opt in optimizer], dtype=float)
        sampler.save_flags(params.save_flags([]))

    def epoch(self) -> dict:
        for _ in range(self.updates_per_epoch):
            self.update()
        return {"updates": self.updates_per_epoch}

    def warm_up(self) -> None:
        for _ in range(5):
            self.update()

    def arrays(self):
        p = self.params
        return (p.weight_matrix.double().numpy().copy(), p.vbias.double().numpy().copy(),
                p.hbias.double().numpy().copy())

    def free_energy(self, v):
        return self.params.compute_energy_visibles(v=v).double().numpy()

    def p_h(self, v):
        return self.params.sample_hiddens({"visible": v})["hidden_mag"].double().numpy()

    def p_v(self, h):
        return self.params.sample_visibles({"hidden": self.torch.from_numpy(h)})["visible_mag"].double().numpy()


# --------------------------------------------------------------------------------------------- learnergy


class LearnergyTrainer:
    lib = "learnergy"

    def __init__(self, x, args):
        import torch
        from learnergy.models.bernoulli import RBM

        self.torch = torch
        xt = torch.from_numpy(x)
        self.dataset = torch.utils.data.TensorDataset(xt, torch.zeros(xt.shape[0]))
        self.batch_size = args.batch_size
        self.model = RBM(n_visible=xt.shape[1], n_hidden=args.hidden, steps=args.k, learning_rate=args.lr,
                         momentum=0.0, decay=0.0, temperature=1.0, use_gpu=False)
        self.method = f"cd-{args.k}"
        self.notes = [
            f"learnergy has no persistent chains: trained with CD-{args.k} (--chains ignored)"
            + (" although --method pcd was asked" if args.method == "pcd" else ""),
            "learnergy RBM.fit(epochs=1) per epoch; plain SGD (torch.optim.SGD, momentum 0, decay 0)",
            "fit also computes per-batch reconstruction MSE and pseudo-likelihood (included in the timings)",
            "init: learnergy (W ~ 0.01 N(0,1), a = 0, b = 0)",
        ]

    def epoch(self) -> dict:
        mse, pl = self.model.fit(self.dataset, batch_size=self.batch_size, epochs=1)
        return {"updates": math.ceil(len(self.dataset) / self.batch_size), "fit_mse": float(mse),
                "fit_pseudo_likelihood": float(pl)}

    def warm_up(self) -> None:
        n = min(len(self.dataset), 5 * self.batch_size)
        self.model.fit(self.torch.utils.data.Subset(self.dataset, range(n)), batch_size=self.batch_size, epochs=1)

    def arrays(self):
        m = self.model
        return (m.W.detach().double().numpy().copy(), m.a.detach().double().numpy().copy(),
                m.b.detach().double().numpy().copy())

    def free_energy(self, v):
        with self.torch.no_grad():
            return self.model.energy(v).double().numpy()

    def p_h(self, v):
        with self.torch.no_grad():
            return self.model.hidden_sampling(v)[0].double().numpy()

    def p_v(self, h):
        with self.torch.no_grad():
            return self.model.visible_sampling(self.torch.from_numpy(h))[0].double().numpy()


TRAINERS = {"rbms": RbmsTrainer, "learnergy": LearnergyTrainer}


def _load_x(path: str, rows: int | None = None):
    import numpy as np

    x = np.load(path, mmap_mode="r")
    if rows is not None:
        x = x[:rows]
    x = np.array(x, dtype=np.float32, order="C", copy=True)
    assert x.ndim == 2 and ((x == 0) | (x == 1)).all(), "expected a 0/1 array of shape (rows, visible)"
    return x


def _make_trainer(args, x):
    import torch

    torch.manual_seed(args.seed)
    import numpy as np

    np.random.seed(args.seed)
    return TRAINERS[args.lib](x, args)


# --------------------------------------------------------------------------------------------- commands


def cmd_train(args) -> int:
    import numpy as np
    import torch

    x = _load_x(args.train)
    trainer = _make_trainer(args, x)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"lib": args.lib, "version": _version(args.lib), "torch": torch.__version__, "method": trainer.method,
            "rows": int(x.shape[0]), "hidden": args.hidden, "batch_size": args.batch_size, "lr": args.lr,
            "chains": args.chains if trainer.method.startswith("pcd") else None, "k": args.k, "seed": args.seed,
            "threads": args.threads, "notes": trainer.notes}
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    v_check = torch.from_numpy(x[:N_CHECK])
    wall = cpu = 0.0
    for e in range(1, args.epochs + 1):
        w0, c0 = _clock()
        info = trainer.epoch()
        w1, c1 = _clock()
        wall += w1 - w0
        cpu += c1 - c0
        W, a, b = trainer.arrays()
        checks = check_conventions(args.lib, (W, a, b), trainer.free_energy, trainer.p_h, trainer.p_v, v_check)
        np.savez(out / f"epoch_{e:03d}.npz", W=W, a=a, b=b, train_wall_s=wall, train_cpu_s=cpu, epoch=e)
        print(json.dumps({"lib": args.lib, "version": meta["version"], "method": trainer.method, "epoch": e,
                          "train_wall_s": round(wall, 4), "train_cpu_s": round(cpu, 4),
                          "epoch_wall_s": round(w1 - w0, 4), "epoch_cpu_s": round(c1 - c0, 4), **info,
                          "convention_check": checks}), flush=True)
    return 0


def cmd_epoch(args) -> int:
    import torch

    x = _load_x(args.train, args.rows)
    trainer = _make_trainer(args, x)
    trainer.warm_up()
    w0, c0 = _clock()
    info = trainer.epoch()
    w1, c1 = _clock()
    W, a, b = trainer.arrays()
    checks = check_conventions(args.lib, (W, a, b), trainer.free_energy, trainer.p_h, trainer.p_v,
                               torch.from_numpy(x[:N_CHECK]))
    print(json.dumps({"lib": args.lib, "version": _version(args.lib), "method": trainer.method,
                      "wall_s": round(w1 - w0, 4), "cpu_s": round(c1 - c0, 4), "rows": int(x.shape[0]),
                      "threads": args.threads, "hidden": args.hidden, "batch_size": args.batch_size, **info,
                      "notes": trainer.notes, "convention_check": checks}), flush=True)
    return 0


def cmd_ais(args) -> int:
    import numpy as np
    import torch
    from rbms.bernoulli_bernoulli.classes import BBRBM
    from rbms.partition_function.ais import compute_partition_function_ais
    from rbms.utils import compute_log_likelihood

    dtype = {"float": torch.float32, "double": torch.float64}[args.dtype]
    z = np.load(args.model)
    W, a, b = (np.asarray(z[k], dtype=np.float64) for k in ("W", "a", "b"))
    assert W.shape == (a.shape[0], b.shape[0]), f"W must be visible x hidden, got {W.shape}"
    params = BBRBM(weight_matrix=torch.from_numpy(W), vbias=torch.from_numpy(a), hbias=torch.from_numpy(b),
                   device="cpu", dtype=dtype)
    out = {"lib": "rbms", "version": _version("rbms")}
    x = None
    if args.data:
        x = torch.from_numpy(_load_x(args.data)).to(dtype)
        out["convention_check"] = check_conventions(
            "rbms", (W, a, b), lambda v: params.compute_energy_visibles(v=v.to(dtype)).double().numpy(),
            lambda v: params.sample_hiddens({"visible": v.to(dtype)})["hidden_mag"].double().numpy(),
            lambda h: params.sample_visibles({"hidden": torch.from_numpy(h).to(dtype)})["visible_mag"]
            .double().numpy(), x[:N_CHECK].float())
    torch.manual_seed(args.seed)
    w0, c0 = _clock()
    log_z = compute_partition_function_ais(num_chains=args.chains, num_beta=args.betas, params=params)
    w1, c1 = _clock()
    out.update({"log_z": log_z, "n_betas": args.betas, "n_chains": args.chains, "schedule": "linear",
                "wall_s": round(w1 - w0, 4), "cpu_s": round(c1 - c0, 4), "seed": args.seed, "dtype": args.dtype,
                "threads": args.threads,
                "settings_source": "rbms 0.6.0 has no defaults; (1000 chains, 5000 betas) as in the authors' "
                                   "own callers" if (args.betas, args.chains) == (AIS_BETAS, AIS_CHAINS)
                                   else "overridden"})
    if x is not None:
        out["mean_log_lik"] = compute_log_likelihood(v_data=x, w_data=torch.ones(x.shape[0], dtype=dtype),
                                                     params=params, log_z=log_z)
        out["data_rows"] = int(x.shape[0])
    print(json.dumps(out), flush=True)
    return 0


# --------------------------------------------------------------------------------------------- main


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lib", choices=sorted(TRAINERS), required=True)
    p.add_argument("--train", required=True, help="0/1 float32 .npy, rows x visible")
    p.add_argument("--hidden", type=int, default=500)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--chains", type=int, default=100, help="persistent chains (PCD)")
    p.add_argument("--k", type=int, default=1, help="Gibbs sweeps per update")
    p.add_argument("--method", choices=["pcd", "cd"], default="pcd",
                   help="pcd (learnergy has none and falls back to CD-k) or cd")
    p.add_argument("--rbms-centered", action="store_true", help="rbms: centered gradient (its default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train, writing DIR/epoch_XXX.npz after every epoch")
    _train_args(t)
    t.add_argument("--epochs", type=int, required=True)
    t.add_argument("--out", required=True)
    e = sub.add_parser("epoch", help="time one epoch after a short warm-up")
    _train_args(e)
    e.add_argument("--rows", type=int, default=None)
    a = sub.add_parser("ais", help="rbms' own AIS log Z of a saved model")
    a.add_argument("--model", required=True, help=".npz with W (visible x hidden), a, b")
    a.add_argument("--data", default=None, help="0/1 .npy: convention check and mean log-likelihood")
    a.add_argument("--betas", type=int, default=AIS_BETAS, help="num_beta (linear schedule 0..1)")
    a.add_argument("--chains", type=int, default=AIS_CHAINS, help="num_chains")
    a.add_argument("--dtype", choices=["float", "double"], default="float", help="rbms default: float")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--threads", type=int, default=1)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    return {"train": cmd_train, "epoch": cmd_epoch, "ais": cmd_ais}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
