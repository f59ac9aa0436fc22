"""Chapter 05 exercises: the reference solutions pass their checkers, wrong answers fail."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mlcourse.course.exercises import ch05 as E


def test_confidence_interval_reference_and_wrong_answers(capsys):
    assert E.check_confidence_interval(E.confidence_interval) is True
    assert (
        E.check_confidence_interval(lambda a: (float(a.mean()), 1.96 * float(a.std()) / len(a) ** 0.5)) is True
    )  # sample std
    assert E.check_confidence_interval(lambda a: (float(a.mean()), float(a.std()))) is False  # forgot sqrt(n)
    assert E.check_confidence_interval(None) is False
    assert "reference" in capsys.readouterr().out.lower()


def test_confidence_interval_matches_protocol():
    from mlcourse.train import confidence_interval

    values = [0.2, 0.4, 0.4, 0.8, 1.0]
    m, c = E.confidence_interval(values)
    ref = confidence_interval(values)
    assert abs(m - ref[0]) < 1e-12 and abs(c - ref[1]) < 1e-12


def test_distinct_superclasses_reference_and_wrong_answers():
    assert E.check_distinct_superclasses(E.distinct_superclasses) is True
    assert E.check_distinct_superclasses(lambda c, s: torch.ones(c.shape[0], dtype=torch.bool)) is False
    # a common slip: comparing neighbours without sorting first
    assert E.check_distinct_superclasses(lambda c, s: (s[c][:, 1:] != s[c][:, :-1]).all(1)) is False
    assert E.check_distinct_superclasses(None) is False


def test_distinct_superclasses_agrees_with_project():
    from mlcourse.course import ch05_project as P

    for _, classes, superclass in E._exercise2_cases():
        assert torch.equal(E.distinct_superclasses(classes, superclass), P.distinct_superclasses(classes, superclass))


def test_inner_step_reference_and_the_articles_mistakes():
    assert E.check_inner_step(E.inner_step) is True
    assert E.check_inner_step(None) is False

    def detached(model, params, x, y, alpha):  # no create_graph: no meta-gradient
        loss = F.cross_entropy(torch.func.functional_call(model, params, (x,)), y)
        grads = torch.autograd.grad(loss, list(params.values()))
        return {n: (p - alpha * g).detach() for (n, p), g in zip(params.items(), grads)}

    def in_place(model, params, x, y, alpha):  # the article: an optimiser step on theta itself
        opt = torch.optim.SGD(model.parameters(), lr=alpha)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        return dict(model.named_parameters())

    assert E.check_inner_step(detached) is False
    assert E.check_inner_step(in_place) is False
