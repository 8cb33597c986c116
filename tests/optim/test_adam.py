"""kakusan.optim.adam: torch's fused Adam where the device has it — the same update as the default Adam, and a run
resumed from a checkpoint keeps the implementation it was saved with."""

import pytest
import torch

from kakusan.optim import adam


def _net(dtype):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)).to(dtype)


def _train(net, optimizer, steps=60):
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(32, 12, generator=g, dtype=next(net.parameters()).dtype)
        loss = (net(x) - x[:, :3]).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return torch.cat([p.detach().flatten() for p in net.parameters()])


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_fused_adam_takes_the_steps_of_torchs_default_adam(dtype, tol):
    a, b = _net(dtype), _net(dtype)
    fused = adam(a.parameters(), lr=1e-2)
    assert fused.param_groups[0]["fused"] is True
    got = _train(a, fused)
    want = _train(b, torch.optim.Adam(b.parameters(), lr=1e-2))
    start = torch.cat([p.detach().flatten() for p in _net(dtype).parameters()])
    assert (want - start).abs().max() > 0.1                     # the runs moved far from where they began …
    assert (got - want).abs().max() < tol                       # … and by the same steps


def test_a_wrong_update_would_fail_the_comparison():
    """Negative control: one changed hyperparameter (β₂) is seen by the same comparison."""
    a, b = _net(torch.float64), _net(torch.float64)
    got = _train(a, torch.optim.Adam(a.parameters(), lr=1e-2, betas=(0.9, 0.99), fused=True))
    want = _train(b, torch.optim.Adam(b.parameters(), lr=1e-2))
    assert (got - want).abs().max() > 1e-4


def test_falls_back_to_the_default_where_the_fused_kernel_is_refused(monkeypatch):
    real = torch.optim.Adam

    def no_fused(params, lr, fused=None, **kw):
        if fused:
            raise RuntimeError("`fused=True` requires all the params to be floating point Tensors of supported devices")
        return real(params, lr=lr, **kw)

    monkeypatch.setattr(torch.optim, "Adam", no_fused)
    net = _net(torch.float32)
    optimizer = adam(net.parameters(), lr=1e-3)
    assert optimizer.param_groups[0]["fused"] is None
    assert len(optimizer.param_groups[0]["params"]) == 4   # a generator of parameters is read once, not twice


def test_a_resumed_optimizer_keeps_the_implementation_it_was_saved_with():
    """A checkpoint of a run begun with the default Adam resumes with it (the flag is in its param groups), so
    resuming such a run stays bit-exact; a fused run's checkpoint resumes fused."""
    net = _net(torch.float32)
    old = torch.optim.Adam(net.parameters(), lr=1e-3)
    _train(net, old, steps=2)
    resumed = adam(net.parameters(), lr=1e-3)
    resumed.load_state_dict(old.state_dict())
    assert resumed.param_groups[0]["fused"] is None
    again = adam(net.parameters(), lr=1e-3)
    again.load_state_dict(adam(net.parameters(), lr=1e-3).state_dict())
    assert again.param_groups[0]["fused"] is True
