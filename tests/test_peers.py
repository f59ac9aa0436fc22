"""higher and TorchOpt, written as their own MAML examples write them (``mlcourse.peers``), give exactly this
project's meta-gradients in float64, so that the benchmark's peer rows time the same computation."""

from __future__ import annotations

import copy

import pytest
import torch
from test_algorithms_helpers import image_batch, meta_grad, rel

from mlcourse import peers
from mlcourse.algorithms import make_learner
from mlcourse.models import Conv4

pytestmark = pytest.mark.usefixtures("one_thread")
CASES = [(name, algo) for name in peers.PEERS for algo in peers.PEER_ALGORITHMS[name]]


@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize(("peer", "algorithm"), CASES)
def test_peer_meta_gradient_equals_ours(peer: str, algorithm: str, steps: int) -> None:
    library, why = peers.load_peer(peer)
    assert library is not None, f"{why}: make setup installs it (the `compare` extra)"
    torch.manual_seed(0)
    model, batch = Conv4(hidden=4, image_size=12, n_out=3).double(), image_batch()
    ours = meta_grad(make_learner(algorithm, model, inner_lr=0.1, inner_steps=steps), batch, True)
    step, owner = peers.peer_step(library, peer, algorithm, copy.deepcopy(model), batch, steps, 0.1)
    loss = step()
    theirs = torch.cat([p.grad.flatten() for p in owner.parameters()])
    assert loss.item() > 0 and rel(theirs, ours) < 1e-10, (peer, algorithm, rel(theirs, ours))
    before = torch.cat([p.detach().flatten() for p in owner.parameters()])
    step()  # a second step starts from the same meta-parameters (TorchOpt restores the module in place)
    assert torch.equal(before, torch.cat([p.detach().flatten() for p in owner.parameters()]))
    assert rel(torch.cat([p.grad.flatten() for p in owner.parameters()]), ours) < 1e-10


def test_missing_peer_is_one_line_and_absent_rows_say_why(monkeypatch) -> None:
    real = peers.importlib.import_module

    def refuse(name: str, *args):
        if name == "higher":
            raise ImportError("no module named higher\nsecond line")
        return real(name, *args)

    monkeypatch.setattr(peers.importlib, "import_module", refuse)
    library, why = peers.load_peer("higher")
    assert library is None and why == "higher is not available here (ImportError: no module named higher)"
    assert "second-order MAML only" in peers.peer_note("torchopt", "fomaml") and peers.peer_note("higher", "maml") == ""
    with pytest.raises(ValueError, match="unknown peer 'jax'; allowed: higher, torchopt"):
        peers.load_peer("jax")
