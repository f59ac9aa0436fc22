import torch

from mlcourse.algorithms import make_learner
from mlcourse.course.exercises import ch03


class _Identity(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Identity())
        self.head = torch.nn.Linear(4, 3)
        self.feature_dim = 4

    def forward(self, x):
        return self.head(self.body(x))


def _task():
    e = ch03.embedding_inputs()
    return e, {"sx": e["support"], "sy": e["support_labels"], "qx": e["query"], "qy": torch.zeros(3, dtype=torch.long)}


def _library_logits(learner, meta, task, n_way):
    """The learner's per-task outputs (what ``learner.predict(learner.adapt(batch), x)`` maps over tasks)."""
    state = learner.task_adapt(
        meta,
        task["sx"],
        task["sy"],
        steps=0,
        inner_lr=None,
        create_graph=False,
        grad_fn=None,
        classification=True,
        n_way=n_way,
    )
    return learner.task_predict(meta, state, task["qx"])


def test_proto_logits_match_the_library_protonet():
    e, task = _task()
    learner = make_learner("protonet", _Identity().double())
    meta = {"model": dict(learner.model.named_parameters())}
    expected = _library_logits(learner, meta, task, 3)
    assert torch.allclose(ch03.proto_logits(**e), expected)
    assert ch03.check_proto_logits(expected) is True
    assert ch03.check_proto_logits(expected + 1) is False


def test_matching_probs_match_the_library_matchingnet():
    e, task = _task()
    # the exercise's attention has no temperature: the library's MatchingNet with tau fixed at 1
    learner = make_learner("matchingnet", _Identity().double(), scale=1.0, learn_scale=False)
    meta = learner.meta_state()
    expected = _library_logits(learner, meta, task, 3).exp()
    probs = ch03.matching_probs(**e)
    assert torch.allclose(probs, expected)
    assert torch.allclose(probs.sum(1), torch.ones(3, dtype=torch.float64))
    assert ch03.check_matching_probs(probs) is True


def test_reptile_update():
    r = ch03.reptile_inputs()
    new = ch03.reptile_update(**r)
    manual = r["theta"] + r["epsilon"] * sum(p - r["theta"] for p in r["phis"]) / len(r["phis"])
    assert torch.allclose(new, manual)
    assert ch03.check_reptile_update(new) is True
    assert ch03.check_reptile_update(r["theta"]) is False
    assert torch.allclose(ch03.check_reptile_update(None), new)
