"""The exercises of docs/mcmc.md: each printed answer, and each output the page quotes, is what kakusan computes.

The page's scripts are run as printed and their output compared line by line with the ```text block after them.
"""

import contextlib
import io
import re
from pathlib import Path

import pytest
import torch

from exercise_answers import answers, check
from kakusan.boltzmann import exact, instances
from kakusan.mcmc import HeatBath, Metropolis, diagnostics, random_spins, run_chain

PAGE = "mcmc"
TEXT = (Path(__file__).resolve().parents[2] / "docs" / "mcmc.md").read_text(encoding="utf-8")


def script_and_output(fence: str) -> tuple[str, list[str]]:
    """The first code block opened by ``fence`` and the lines of the ```text block right after it."""
    code, output = re.search(rf"^{re.escape(fence)}\n(.*?)^```\n.*?^```text\n(.*?)^```", TEXT,
                             flags=re.S | re.M).groups()
    return code, output.splitlines()


def output_of(code: str) -> list[str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "docs/mcmc.md", "exec"), {})
    return out.getvalue().splitlines()


def model():
    return instances.curie_weiss(6, beta=1.5)


def sweep_matrix(kernel, m) -> tuple[torch.Tensor, torch.Tensor]:
    """States (2^N, N) and the matrix of one sequential sweep, T = T_0 T_1 … T_{N−1}."""
    x = exact.all_states(m.n_visible)
    J, h = m.couplings().detach(), m.h.detach()
    T = torch.eye(len(x), dtype=torch.float64)
    for k in range(m.n_visible):
        a = kernel.flip_probability(2 * x[:, k] * (x @ J[:, k] + h[k]))
        flipped = x.clone()
        flipped[:, k] *= -1
        Tk = torch.diag(1 - a)
        Tk[torch.arange(len(x)), exact.state_index(flipped)] = a
        T = T @ Tk
    return x, T


def exact_tau(m, kernel_class) -> float:
    x, T = sweep_matrix(kernel_class(m), m)
    q = torch.exp(exact.log_prob_all(m))
    assert float((q @ T - q).abs().max()) < 1e-14  # global balance
    a = x.mean(1) - q @ x.mean(1)
    Z = torch.linalg.inv(torch.eye(len(q), dtype=torch.float64) - T + q.expand(len(q), -1))
    return float(2 * (q * a * (Z @ a)).sum() / (q * a * a).sum() - 1)


def test_the_page_prints_every_answer():
    assert set(answers(PAGE)) == {
        "τ_int heat bath", "τ_int Metropolis", "τ_int heat bath, β 0.5", "τ_int Metropolis, β 0.5",
        "τ_int heat bath, estimated", "τ_int Metropolis, estimated", "⟨m⟩ heat bath", "s.e. heat bath",
        "⟨m⟩ Metropolis", "s.e. Metropolis", "TV", "⟨E⟩ synchronous", "⟨E⟩ exact"}


def test_exercise_1_exact_tau_of_a_sweep():
    for beta, suffix in ((1.5, ""), (0.5, ", β 0.5")):
        for K in (HeatBath, Metropolis):
            name = "heat bath" if K is HeatBath else "Metropolis"
            check(PAGE, f"τ_int {name}{suffix}", exact_tau(instances.curie_weiss(6, beta=beta), K))


def test_exercise_2_tau_estimated_from_chains():
    m = model()
    for K, name in ((HeatBath, "heat bath"), (Metropolis, "Metropolis")):
        kernel = K(m)
        trace = run_chain(kernel, kernel.init(random_spins(16, 6, generator=0)), 20_000, burn_in=1000, generator=1,
                          observables=("magnetization",))
        est = diagnostics.estimate(trace["magnetization"])
        check(PAGE, f"τ_int {name}, estimated", float(est.tau))
        check(PAGE, f"⟨m⟩ {name}", float(est.mean))
        check(PAGE, f"s.e. {name}", float(est.error))


def test_exercise_3_synchronous_update_has_another_stationary_distribution():
    m = model()
    x = exact.all_states(6)
    f = x @ m.couplings().detach() + m.h.detach()
    P = torch.exp(torch.nn.functional.logsigmoid(2 * f[:, None, :] * x[None, :, :]).sum(-1))  # P[x, y]
    evals, evecs = torch.linalg.eig(P.T)
    pi = evecs[:, int(torch.argmin((evals - 1).abs()))].real
    pi = pi / pi.sum()
    peretto = torch.softmax(torch.log(2 * torch.cosh(f)).sum(1) + x @ m.h.detach(), 0)
    assert torch.allclose(pi, peretto, atol=1e-12)
    q, E = torch.exp(exact.log_prob_all(m)), m.energy(x).detach()
    check(PAGE, "TV", float(0.5 * (pi - q).abs().sum()))
    check(PAGE, "⟨E⟩ synchronous", float(pi @ E))
    check(PAGE, "⟨E⟩ exact", float(q @ E))


@pytest.mark.slow
def test_the_pages_example_prints_what_the_page_quotes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the script writes its figures under docs/figures/
    code, output = script_and_output("```python")
    assert output_of(code) == output


@pytest.mark.slow
def test_the_20_seed_repeat_prints_what_the_page_quotes():
    code, output = script_and_output("```{code-block} python")
    assert output_of(code) == output
