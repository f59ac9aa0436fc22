"""Issue 27's remedies for MAML's memory, float64: checkpointed MAML gives MAML's meta-gradient while it stores far
less of the inner loop's graph; truncated MAML interpolates between MAML (every step back-propagated) and
first-order MAML (none)."""

from __future__ import annotations

import pytest
from test_algorithms import conv
from test_algorithms_helpers import image_batch, meta_grad, rel

from mlcourse.algorithms import make_learner
from mlcourse.bench import graph_saved_bytes

pytestmark = pytest.mark.usefixtures("one_thread")


def _learner(name: str, steps: int, **kw):
    return make_learner(name, conv(), inner_lr=0.1, inner_steps=steps, vectorise=False, **kw)


@pytest.mark.parametrize("steps", [1, 3, 10])
def test_checkpointed_maml_gives_maml_s_meta_gradient(steps: int) -> None:
    batch = image_batch()
    exact = meta_grad(_learner("maml", steps), batch, False)
    checkpointed = meta_grad(_learner("checkpointed", steps), batch, True)  # asked to vectorise: runs the loop
    assert exact.norm() > 0 and rel(checkpointed, exact) < 1e-12, (steps, rel(checkpointed, exact))


def test_checkpointed_maml_stores_a_fraction_of_the_inner_loop_s_graph() -> None:
    batch = image_batch()
    held = {}
    for name in ("maml", "checkpointed"):
        lrn = _learner(name, 10)
        held[name] = graph_saved_bytes(lambda lrn=lrn: lrn(batch).loss, list(lrn.parameters()))["held"]
    assert held["checkpointed"] < held["maml"] / 4, held


@pytest.mark.parametrize("vectorise", [True, False])
def test_truncated_maml_runs_from_first_order_to_second_order(vectorise: bool) -> None:
    batch, steps = image_batch(), 3
    maml = meta_grad(_learner("maml", steps), batch, vectorise)
    first_order = meta_grad(_learner("fomaml", steps), batch, vectorise)
    grads = {k: meta_grad(_learner("truncated", steps, backprop_steps=k), batch, vectorise) for k in range(steps + 2)}
    assert rel(grads[steps], maml) < 1e-12 and rel(grads[steps + 1], maml) < 1e-12  # more than K: all of them
    assert rel(grads[0], first_order) < 1e-12
    for k in (1, 2):  # in between: neither
        assert rel(grads[k], maml) > 1e-6 and rel(grads[k], first_order) > 1e-6, k
    with pytest.raises(ValueError, match="backprop_steps=-1 is not allowed"):
        _learner("truncated", steps, backprop_steps=-1)
