"""The numbers docs/boltzmann.md quotes outside its exercises, recomputed (see page_numbers).

The enumeration rates behind §3 are on docs/benchmarks.md, checked by test_numbers_benchmarks.py.
"""

import torch

from kakusan.boltzmann import IsingModel, instances, kl_divergence
from kakusan.learn import fit_boltzmann
from kakusan.runtime import make_generator
from page_numbers import check

PAGE = "boltzmann"


def test_the_command_line_fit_of_section_5():
    # What `kakusan ising sample sk12.npz -n 20000 --seed 1` and `kakusan ising fit data.npy --steps 500` do,
    # without the files and figures: exact draws, then 500 backtracking steps on exact moments from IsingModel(12).
    truth = instances.sherrington_kirkpatrick(12, beta=1.0, field_std=0.3, seed=7)
    x = truth.sample(20000, make_generator(1))
    model, result = fit_boltzmann(x, IsingModel(12), method="exact", steps=500, seed=0, progress=False)
    assert len(result.history) == 500
    iu = torch.triu_indices(12, 12, 1)
    true_j, learned_j = (m.couplings().detach()[iu[0], iu[1]] for m in (truth, model))
    check(PAGE, "KL(p0||q)", kl_divergence(model, x))
    check(PAGE, "KL(p0||q_true)", kl_divergence(truth, x))
    check(PAGE, "relative J error", float((learned_j - true_j).norm() / true_j.norm()))

