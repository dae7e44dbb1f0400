"""Our multi-tensor optimizers take exactly the steps torch.optim takes."""

import pytest
import torch

from objectives._optim import SGD, Adam


def run(make, steps=6):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    optimizer = make(model.parameters())
    x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda p: SGD(p, lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
        (lambda p: SGD(p, lr=0.05, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
        (
            lambda p: SGD(p, lr=0.05, momentum=0.7, weight_decay=1e-2),
            lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.7, weight_decay=1e-2),
        ),
        (lambda p: Adam(p, lr=1e-2), lambda p: torch.optim.Adam(p, lr=1e-2)),
        (
            lambda p: Adam(p, lr=3e-3, betas=(0.8, 0.99), weight_decay=1e-3),
            lambda p: torch.optim.Adam(p, lr=3e-3, betas=(0.8, 0.99), weight_decay=1e-3),
        ),
    ],
)
def test_same_steps_as_torch_optim(ours, theirs):
    for a, b in zip(run(ours), run(theirs), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_parameters_move():
    before = run(lambda p: SGD(p, lr=0.1), steps=0)
    after = run(lambda p: SGD(p, lr=0.1), steps=2)
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (
            lambda p: SGD(p, lr=0.05, momentum=0.7, weight_decay=1e-2),
            lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.7, weight_decay=1e-2, fused=True),
        ),
        (
            lambda p: Adam(p, lr=3e-3, betas=(0.8, 0.99), weight_decay=1e-3),
            lambda p: torch.optim.Adam(p, lr=3e-3, betas=(0.8, 0.99), weight_decay=1e-3, fused=True),
        ),
    ],
)
def test_the_very_numbers_of_torch_optims_fused_kernels(ours, theirs):
    for a, b in zip(run(ours), run(theirs), strict=True):
        assert torch.equal(a, b)
