"""The divergence guard of the training commands: a run whose objective or parameters explode stops with one line.

``kakusan.train.fit`` stops on a non-finite loss or parameter; a learning rate far too large can instead drive
the parameters to huge but finite values (an Ising fit at ``--lr 1e9`` ended with KL = 9.7·10⁹ nats, an RBM at
``--lr 1e6`` with log-likelihood −2.4·10³⁴) and exit 0. :class:`DivergenceGuard` is the loop's ``callback``: after
every update it checks the loss is finite and no parameter exceeds :data:`PARAMETER_LIMIT` in magnitude. It raises
before the loop's next checkpoint, so the checkpoints already written are the last good ones and are kept.
The message names the learning rate.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

from kakusan.errors import KakusanError

PARAMETER_LIMIT = 1e4
"""|θ| beyond which a Boltzmann machine's or an RBM's parameters have exploded: a coupling of 50 already makes
a ±1 pair's Boltzmann factor e¹⁰⁰, so 10⁴ is past anything data can ask for, whatever the model's size."""


class DivergenceError(KakusanError):
    """Training diverged: the objective or the parameters stopped being finite or exploded."""


class DivergenceGuard:
    """``callback(step, out)`` for ``kakusan.train.fit`` (through ``fit_rbm`` or ``fit_boltzmann``).

    ``lr`` says in words which learning rate the run used (``"--lr 0.05"``), or None where the step size is
    chosen by the optimizer (the surrogate method's 1/L).
    """

    def __init__(self, model, lr: str | None, limit: float | None = None):
        self.model, self.lr, self.limit = model, lr, PARAMETER_LIMIT if limit is None else limit

    def __call__(self, step: int, out) -> None:
        loss = out.loss.detach() if hasattr(out.loss, "detach") else out.loss
        loss = float(loss.double().sum()) if hasattr(loss, "double") else float(loss)
        if not math.isfinite(loss):
            raise self.error(step, f"the loss is {loss}")
        value = getattr(out, "value", None)
        if value is not None and not math.isfinite(float(value)):
            raise self.error(step, f"the objective is {float(value)}")
        largest = max((float(p.detach().abs().max()) for p in self.model.parameters() if p.numel()), default=0.0)
        if not largest <= self.limit:  # also NaN
            raise self.error(step, f"a parameter reached |θ| = {largest:.3g} (more than {self.limit:g})")

    def error(self, step: int | None, why: str) -> DivergenceError:
        at = f" at update {step}" if step is not None else ""
        if self.lr is None:
            fix = "the optimizer's step size is too large for these data: try --optimizer backtracking"
        else:
            fix = f"the learning rate {self.lr} is too large for these data: lower it"
        return DivergenceError(f"training diverged{at} ({why}); {fix}; checkpoints written before it are kept")

    @contextmanager
    def naming_lr(self):
        """Turn the training loop's own divergence error (non-finite loss or parameters) into this guard's
        message, which names the learning rate."""
        try:
            yield self
        except DivergenceError:
            raise
        except KakusanError as e:
            if not str(e).startswith("training diverged"):
                raise
            raise self.error(None, "the loss or a parameter became NaN or infinite") from None
