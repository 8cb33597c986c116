"""Drive the peer VAE library ``pythae`` (0.1.2) for the VAE speed benchmark (``bench_vae.py``).

Runs INSIDE its own virtualenv (``benchmarks/.peer-venv-pythae``, gitignored); it imports numpy, torch and
pythae only, never kakusan. The data come from the parent as ``.npy`` files, float32 0/1 arrays of shape
(rows, 784) (binarised MNIST, binarised with a fixed seed by the parent, so both sides see the same bits).
Every subcommand prints JSON lines on stdout (pythae's own logging and tqdm bars go to stderr).

The model: ``pythae.models.VAE`` with ``VAEConfig(input_dim=(1, 28, 28), latent_dim=50,
reconstruction_loss="bce")`` (a Bernoulli likelihood: pythae's "bce" is the summed binary cross-entropy of
the decoder's probabilities) and the nets of Burda et al. (2016, §5) written as pythae custom nets
(``BaseEncoder``/``BaseDecoder`` subclasses returning ``ModelOutput``, as in pythae's own reproducibility
scripts): encoder 784-200-200 tanh, then two linear heads 200→50 (``embedding``, the mean) and 200→50
(``log_covariance``, log σ²); decoder 50-200-200 tanh, then 200→784 and a sigmoid. 425,284 parameters,
asserted (kakusan's ``VAE(VAEConfig())`` has the same count: its encoder's last layer is one 200→100 map,
the same numbers as the two heads). Initialisation: torch's default for ``nn.Linear`` (pythae's too).

Subcommands:

* ``steps``: the raw per-step loop. A ``BaseTrainer`` is built and prepared (``prepare_training``: seed,
  Adam), and each step is the body of ``BaseTrainer.train_step`` — ``trainer.model(inputs, epoch=...,
  dataset_size=..., uses_ddp=False)`` then ``trainer._optimizers_step(output)`` (zero_grad, backward,
  Adam step) — with the batches pre-sliced from a permuted tensor (as ``DatasetOutput(data=…)``) instead of
  pythae's per-item DataLoader, without the callbacks (tqdm) and without ``loss.item()``. Before timing, on
  ``--check-rows`` rows, one epoch of ``trainer.train_step`` is compared bit for bit with this loop fed by
  the trainer's own DataLoader from the same seed (``loop_check``): the loop is the library's.
* ``epoch``: pythae's trainer as a user runs it, ``BaseTrainer(model, train, eval, config).train()`` with
  the test rows as its eval set, batch 100 for training and evaluation, Adam; per epoch that is the
  DataLoader, the training steps, ``loss.item()`` and tqdm, then the evaluation pass over the eval set, a
  ``deepcopy`` of the model when the eval loss improved and the console log. A ``TrainingCallback`` takes
  the time at ``on_epoch_begin``, ``on_eval_step_begin`` (end of the training part) and ``on_log`` (end of
  the epoch); one JSON line per epoch. The final model save after the last epoch is not counted.
* ``nll``: pythae's ``VAE.get_nll(data, n_samples=k, batch_size=100)`` on ``--images`` test rows, called as
  pythae's own reproducibility script (``examples/scripts/reproducibility/vae.py``) calls it: ``model.eval()``
  and ``torch.no_grad()``. get_nll loops over the images one at a time, and for each runs the encoder and
  decoder on a batch of k copies (k ≤ batch_size, so one pass) and takes log mean exp of the k log weights.
  Also timed, on ``--grad-images`` rows: the same call with autograd left on (a plain call; get_nll itself
  does not switch it off). The weights are loaded from ``--weights`` (a neutral ``.npz`` written by the
  parent from a trained kakusan model, torch ``nn.Linear`` layout: ``enc.0``, ``enc.2``, ``enc.mean``,
  ``enc.log_var``, ``dec.0``, ``dec.2``, ``dec.4`` ``.weight``/``.bias``), so both libraries evaluate the
  same model, and the parent compares pythae's value with its own estimate (``same_model`` check in
  ``bench_vae.py``). Without ``--weights`` the model is trained for ``--train-steps`` raw steps first.

Install recipe (what was run; torch first from the local CPU wheel; pythae 0.1.2 requires only
``torch>=1.10.1``, so the installed 2.13.0+cpu satisfies it and pip pulls no other torch — ``pip install
--dry-run pythae==0.1.2`` listed no torch; afterwards ``pip list`` shows torch 2.13.0+cpu)::

    cd /work/main
    python3 -m venv benchmarks/.peer-venv-pythae          # Python 3.11.7
    P=benchmarks/.peer-venv-pythae/bin/pip
    $P install torch==2.13.0                              # CPU build (2.13.0+cpu)
    $P install pythae==0.1.2
    $P list | grep -iE "torch|pythae"                     # pythae 0.1.2, torch 2.13.0+cpu
    benchmarks/.peer-venv-pythae/bin/python -c "import pythae"

pythae's other runtime dependencies came with it: numpy 2.4.6, scipy 1.17.1, scikit-learn 1.9.1, pydantic
2.14.4, cloudpickle 3.1.3, imageio 2.38.2, tqdm 4.70.1, typing-extensions, dataclasses 0.6 (a backport that
the standard library shadows on 3.11). Examples::

    V=benchmarks/.peer-venv-pythae/bin/python
    $V benchmarks/peer_vae.py steps --train X.npy --steps 200 --warmup 20
    $V benchmarks/peer_vae.py epoch --train X.npy --eval T.npy --epochs 2
    $V benchmarks/peer_vae.py nll --test T.npy --images 1000 --k 100 --weights W.npz
"""

from __future__ import annotations

import os

os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # before torch is imported (it is imported lazily in main)

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

N_PARAMS = 425_284  # Burda et al. 784-200-200-(50+50) / 50-200-200-784, biases included
INPUT_DIM = (1, 28, 28)
N_LATENT = 50
HIDDEN = 200


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


# --------------------------------------------------------------------------------------------- the model


def build_model(seed: int):
    """pythae's VAE with the Burda et al. MLP nets (see the module docstring), parameters counted."""
    import numpy as np
    import torch
    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from torch import nn

    n_in = int(np.prod(INPUT_DIM))

    class BurdaEncoder(BaseEncoder):
        def __init__(self):
            BaseEncoder.__init__(self)
            self.layers = nn.Sequential(nn.Linear(n_in, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, HIDDEN), nn.Tanh())
            self.embedding = nn.Linear(HIDDEN, N_LATENT)
            self.log_var = nn.Linear(HIDDEN, N_LATENT)

        def forward(self, x):
            h = self.layers(x.reshape(-1, n_in))
            return ModelOutput(embedding=self.embedding(h), log_covariance=self.log_var(h))

    class BurdaDecoder(BaseDecoder):
        def __init__(self):
            BaseDecoder.__init__(self)
            self.layers = nn.Sequential(nn.Linear(N_LATENT, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, HIDDEN), nn.Tanh(),
                                        nn.Linear(HIDDEN, n_in), nn.Sigmoid())

        def forward(self, z):
            return ModelOutput(reconstruction=self.layers(z).reshape((z.shape[0],) + INPUT_DIM))

    torch.manual_seed(seed)
    config = VAEConfig(input_dim=INPUT_DIM, latent_dim=N_LATENT, reconstruction_loss="bce")
    model = VAE(model_config=config, encoder=BurdaEncoder(), decoder=BurdaDecoder())
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == N_PARAMS, f"pythae model has {n_params} parameters, expected {N_PARAMS}"
    return model


WEIGHT_MAP = {  # neutral name (torch nn.Linear layout) -> pythae module path
    "enc.0": "encoder.layers.0", "enc.2": "encoder.layers.2", "enc.mean": "encoder.embedding",
    "enc.log_var": "encoder.log_var", "dec.0": "decoder.layers.0", "dec.2": "decoder.layers.2",
    "dec.4": "decoder.layers.4",
}


def load_weights(model, path: str) -> None:
    import numpy as np
    import torch

    z = np.load(path)
    state = {}
    for neutral, ours in WEIGHT_MAP.items():
        for part in ("weight", "bias"):
            state[f"{ours}.{part}"] = torch.from_numpy(np.asarray(z[f"{neutral}.{part}"], dtype=np.float32))
    missing = set(model.state_dict()) - set(state)
    assert not missing, f"weights file lacks {sorted(missing)}"
    model.load_state_dict(state, strict=True)


def _load_x(path: str, rows: int | None = None):
    import numpy as np
    import torch

    x = np.load(path, mmap_mode="r")
    if rows is not None:
        x = x[:rows]
    x = np.array(x, dtype=np.float32, order="C", copy=True)
    assert x.ndim == 2 and x.shape[1] == 784 and ((x == 0) | (x == 1)).all(), "expected 0/1 rows of 784 pixels"
    return torch.from_numpy(x).reshape(-1, *INPUT_DIM)


def make_trainer(model, train, eval_data, args, out_dir: str, epochs: int, callbacks=None):
    """pythae's BaseTrainer with batch ``args.batch_size`` (train and eval), Adam at ``args.lr``."""
    from pythae.data.preprocessors import DataProcessor
    from pythae.trainers import BaseTrainer, BaseTrainerConfig

    config = BaseTrainerConfig(output_dir=out_dir, per_device_train_batch_size=args.batch_size,
                               per_device_eval_batch_size=args.batch_size, num_epochs=epochs,
                               learning_rate=args.lr, optimizer_cls="Adam", seed=args.seed, no_cuda=True,
                               steps_saving=None, steps_predict=None)
    return BaseTrainer(model=model, train_dataset=DataProcessor.to_dataset(train),
                       eval_dataset=None if eval_data is None else DataProcessor.to_dataset(eval_data),
                       training_config=config, callbacks=callbacks)


def raw_step(trainer, inputs, dataset_size: int) -> None:
    """One step of ``BaseTrainer.train_step``'s loop body, without callbacks and ``loss.item()``."""
    inputs = trainer._set_inputs_to_device(inputs)
    with trainer.amp_context:
        out = trainer.model(inputs, epoch=1, dataset_size=dataset_size, uses_ddp=False)
    trainer._optimizers_step(out)


def loop_check(train, args, out_dir: str) -> dict:
    """One epoch of ``trainer.train_step`` against ``raw_step`` on the trainer's own DataLoader: same seed,
    same batches, same noise, so the parameters must agree bit for bit."""
    import torch
    from pythae.trainers.trainer_utils import set_seed

    results = []
    for mode in ("library", "raw"):
        model = build_model(args.seed)
        trainer = make_trainer(model, train, None, args, out_dir, epochs=1)
        trainer.prepare_training()
        set_seed(args.seed + 1)
        if mode == "library":
            trainer.train_step(1)
        else:
            trainer.model.train()
            for inputs in trainer.train_loader:
                raw_step(trainer, inputs, len(trainer.train_loader.dataset))
        results.append([p.detach().clone() for p in trainer.model.parameters()])
    equal = all(torch.equal(a, b) for a, b in zip(*results))
    assert equal, "the raw per-step loop does not reproduce pythae's BaseTrainer.train_step"
    return {"loop_check_rows": int(len(train)), "loop_check_bit_identical": equal}


# --------------------------------------------------------------------------------------------- commands


def cmd_steps(args) -> int:
    import torch
    from pythae.data.datasets import DatasetOutput

    x = _load_x(args.train, args.rows)
    with tempfile.TemporaryDirectory() as out_dir:
        check = loop_check(x[: args.check_rows], args, out_dir) if args.check_rows else {}
        model = build_model(args.seed)
        trainer = make_trainer(model, x, None, args, out_dir, epochs=1)
        trainer.prepare_training()
        trainer.model.train()
        g = torch.Generator().manual_seed(args.seed)
        n, b = len(x), args.batch_size
        per_epoch = n // b
        total = args.warmup + args.steps
        perms = [torch.randperm(n, generator=g) for _ in range(math.ceil(total / per_epoch))]
        batches = [DatasetOutput(data=x[perms[s // per_epoch][(s % per_epoch) * b:(s % per_epoch + 1) * b]],
                                 labels=torch.ones(b)) for s in range(total)]
        for s in range(args.warmup):
            raw_step(trainer, batches[s], n)
        w0, c0 = _clock()
        for s in range(args.warmup, total):
            raw_step(trainer, batches[s], n)
        w1, c1 = _clock()
        with torch.no_grad():
            loss = float(trainer.model(batches[0]).loss)
    _emit({"lib": "pythae", "version": _version("pythae"), "torch": torch.__version__, "what": "steps",
           "steps": args.steps, "warmup": args.warmup, "batch_size": b, "rows": n, "threads": args.threads,
           "wall_s": round(w1 - w0, 4), "cpu_s": round(c1 - c0, 4),
           "s_per_step": (w1 - w0) / args.steps, "cpu_s_per_step": (c1 - c0) / args.steps,
           "loss_after": loss, "params": N_PARAMS, **check,
           "notes": ["BaseTrainer.train_step body (model forward, _optimizers_step: zero_grad, backward, Adam)",
                     "batches pre-sliced from a permuted tensor; no DataLoader, callbacks or loss.item()"]})
    return 0


def cmd_epoch(args) -> int:
    import torch
    from pythae.trainers.training_callbacks import TrainingCallback

    x = _load_x(args.train, args.rows)
    xe = _load_x(args.eval, args.eval_rows)

    class Clock(TrainingCallback):
        def __init__(self):
            self.marks: dict[str, list[tuple[float, float]]] = {"begin": [], "eval": [], "end": []}

        def on_epoch_begin(self, training_config, **kwargs):
            self.marks["begin"].append(_clock())

        def on_eval_step_begin(self, training_config, **kwargs):
            self.marks["eval"].append(_clock())

        def on_log(self, training_config, logs, **kwargs):
            self.marks["end"].append(_clock())
            self.marks.setdefault("logs", []).append(dict(logs))

    clock = Clock()
    model = build_model(args.seed)
    with tempfile.TemporaryDirectory() as out_dir:
        trainer = make_trainer(model, x, xe, args, out_dir, epochs=args.epochs, callbacks=[clock])
        trainer.train()
        steps = len(trainer.train_loader)
        eval_batches = len(trainer.eval_loader)
    m = clock.marks
    for e in range(args.epochs):
        (wb, cb), (we, ce), (wn, cn) = m["begin"][e], m["eval"][e], m["end"][e]
        _emit({"lib": "pythae", "version": _version("pythae"), "torch": torch.__version__, "what": "epoch",
               "epoch": e + 1, "rows": int(len(x)), "eval_rows": int(len(xe)), "steps": steps,
               "eval_batches": eval_batches, "batch_size": args.batch_size, "threads": args.threads,
               "epoch_wall_s": round(wn - wb, 4), "epoch_cpu_s": round(cn - cb, 4),
               "train_wall_s": round(we - wb, 4), "train_cpu_s": round(ce - cb, 4),
               "eval_wall_s": round(wn - we, 4), "eval_cpu_s": round(cn - ce, 4),
               "s_per_step": (we - wb) / steps, "train_loss": m["logs"][e].get("train_epoch_loss"),
               "eval_loss": m["logs"][e].get("eval_epoch_loss"), "params": N_PARAMS,
               "notes": ["BaseTrainer.train(): DataLoader, steps, loss.item(), tqdm; eval pass on the eval "
                         "rows, deepcopy of the best model, console log", "final model save not counted"]})
    return 0


def cmd_nll(args) -> int:
    import torch

    xt = _load_x(args.test, args.images)
    model = build_model(args.seed)
    if args.weights:
        load_weights(model, args.weights)
        source = "weights from " + os.path.basename(args.weights)
    else:
        with tempfile.TemporaryDirectory() as out_dir:
            trainer = make_trainer(model, _load_x(args.train), None, args, out_dir, epochs=1)
            trainer.prepare_training()
            trainer.model.train()
            it = iter(trainer.train_loader)
            for _ in range(args.train_steps):
                raw_step(trainer, next(it), len(trainer.train_loader.dataset))
        source = f"{args.train_steps} raw pythae steps"
    model.eval()
    torch.manual_seed(args.seed)
    with torch.no_grad():  # warm-up: a few images
        model.get_nll(xt[: min(4, len(xt))], n_samples=args.k, batch_size=args.batch_size)
    w0, c0 = _clock()
    with torch.no_grad():
        value = model.get_nll(xt, n_samples=args.k, batch_size=args.batch_size)
    w1, c1 = _clock()
    out = {"lib": "pythae", "version": _version("pythae"), "torch": torch.__version__, "what": "nll",
           "images": int(len(xt)), "k": args.k, "batch_size": args.batch_size, "threads": args.threads,
           "wall_s": round(w1 - w0, 4), "cpu_s": round(c1 - c0, 4), "s_per_image": (w1 - w0) / len(xt),
           "cpu_s_per_image": (c1 - c0) / len(xt), "images_per_s": len(xt) / (w1 - w0),
           "mean_log_likelihood": float(value), "model": source, "params": N_PARAMS,
           "notes": ["VAE.get_nll(data, n_samples=k, batch_size=100) under model.eval() and torch.no_grad(), "
                     "as pythae's reproducibility script calls it; get_nll returns the mean log-likelihood"]}
    if args.grad_images:
        xg = xt[: args.grad_images]
        w0, c0 = _clock()
        model.get_nll(xg, n_samples=args.k, batch_size=args.batch_size)
        w1, c1 = _clock()
        out.update({"grad_images": int(len(xg)), "grad_s_per_image": (w1 - w0) / len(xg),
                    "grad_cpu_s_per_image": (c1 - c0) / len(xg)})
    _emit(out)
    return 0


# --------------------------------------------------------------------------------------------- main


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("steps", help="time the raw per-step loop (model forward + backward + Adam)")
    _common(s)
    s.add_argument("--train", required=True, help="0/1 float32 .npy, rows x 784")
    s.add_argument("--rows", type=int, default=None)
    s.add_argument("--steps", type=int, default=200)
    s.add_argument("--warmup", type=int, default=20)
    s.add_argument("--check-rows", type=int, default=500, help="rows of the bit-for-bit loop check (0: skip)")
    e = sub.add_parser("epoch", help="time pythae's BaseTrainer, per epoch, with its evaluation")
    _common(e)
    e.add_argument("--train", required=True)
    e.add_argument("--eval", required=True, help="0/1 .npy: the trainer's eval set (the test rows)")
    e.add_argument("--rows", type=int, default=None)
    e.add_argument("--eval-rows", type=int, default=None)
    e.add_argument("--epochs", type=int, default=2)
    n = sub.add_parser("nll", help="time VAE.get_nll per image")
    _common(n)
    n.add_argument("--test", required=True)
    n.add_argument("--images", type=int, default=1000)
    n.add_argument("--grad-images", type=int, default=50, help="also time this many with autograd on (0: skip)")
    n.add_argument("--k", type=int, default=100, help="importance samples (n_samples)")
    n.add_argument("--weights", default=None, help="neutral .npz of the model's weights (see the docstring)")
    n.add_argument("--train", default=None, help="without --weights: train this many raw steps on these rows")
    n.add_argument("--train-steps", type=int, default=100)
    args = ap.parse_args(argv)
    if args.cmd == "nll" and not args.weights and not args.train:
        ap.error("nll needs --weights or --train")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    return {"steps": cmd_steps, "epoch": cmd_epoch, "nll": cmd_nll}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
