"""Every chapter's exercises, run from the instructor notebook's cells (tests/exercise_cells.py): the solutions pass
the visible and hidden tests, unanswered and wrong answers fail with a hint that shows no expected value, and no
function of the installed package passes as an answer."""

from __future__ import annotations

import pytest
from exercise_cells import (
    answer_ids,
    assert_imports_fail,
    assert_solutions_pass,
    assert_unanswered_fail,
    assert_wrong_fails_with_hint,
)

# what each chapter's exercise section needs defined before its cells run
PREAMBLE = {
    "01": "import torch\nfrom mlcourse.data.tasks import TaskBatch\ng = torch.Generator().manual_seed(0)\ntask = TaskBatch(torch.rand(1, 5, 1, 8, 8, generator=g), torch.arange(5)[None], torch.rand(1, 10, 1, 8, 8, generator=g), torch.arange(5).repeat(2)[None])",
    "02": "import torch",
    "03": "import torch",
    "04": "import torch",
    "05": "import torch",
    "06": "import torch",
    "07": "import torch",
    "08": "import torch",
}
# a plausible mistake per exercise (the body of `answer`), and the expression whose right value the hint must not show
WRONG = [
    (
        "01",
        "ch01-ex1-answer",
        (
            "a = torch.as_tensor(accuracies, dtype=torch.float64).reshape(-1)\n"
            "return float(a.mean()), 1.96 * float(a.std()) / a.numel() ** 0.5  # sample std",
            "answer(accuracies)",
        ),
    ),
    (
        "01",
        "ch01-ex2-answer",
        (
            "return torch.cdist(query_x.flatten(1), support_x.flatten(1)).argmin(1)  # an index, not a label",
            "None",
        ),
    ),
    (
        "02",
        "ch02-ex1-answer",
        (
            "r = w * x + b - y\nreturn w + alpha * float((2 * r * x).mean()), b + alpha * float((2 * r).mean())  # uphill",
            "answer(**inner_step_inputs())",
        ),
    ),
    (
        "02",
        "ch02-ex2-answer",
        (
            "phi = theta - alpha * a * (theta - c)\nreturn float((a * (phi - c)).mean())  # first order",
            "answer(**meta_gradient_inputs())",
        ),
    ),
    (
        "03",
        "ch03-ex1-answer",
        (
            "import torch.nn.functional as F\n"
            "s, q = embed(support_x), embed(query_x)\n"
            "c = torch.stack([s[support_y == k].mean(0) for k in range(int(support_y.max()) + 1)])\n"
            "return F.cross_entropy(-torch.cdist(q, c) ** 2, query_y, reduction='sum')  # summed",
            "answer(**episode)",
        ),
    ),
    (
        "03",
        "ch03-ex2-answer",
        (
            "import torch.nn.functional as F\n"
            "attention = torch.softmax(query @ support.T, dim=-1)  # dot product, not cosine\n"
            "return attention @ F.one_hot(support_labels).to(attention.dtype)",
            "answer(support, support_labels, query)",
        ),
    ),
    (
        "03",
        "ch03-ex4-answer",
        (
            "(xs, ys), (xq, yq) = support, query\n"
            "phi = list(params)\n"
            "for _ in range(steps):\n"
            "    grads = torch.autograd.grad((mlp(phi, xs) - ys).square().mean(), phi)  # no "
            "create_graph: first order\n"
            "    phi = [p - alpha * g for p, g in zip(phi, grads)]\n"
            "meta_loss = (mlp(phi, xq) - yq).square().mean()\n"
            "return meta_loss, list(torch.autograd.grad(meta_loss, params))",
            "answer(**maml_task)",
        ),
    ),
    (
        "04",
        "ch04-ex1-answer",
        (
            "from torch.func import grad\n"
            "\n"
            "from mlcourse.course.ch04 import bilevel as B\n"
            "\n"
            "g = grad(task.support_loss)\n"
            "phi1 = theta - alpha * g(theta)\n"
            "v = grad(task.query_loss)(phi1 - alpha * g(phi1))\n"
            "v = v - alpha * B.hvp(task.support_loss, theta, v)  # both Hessians at theta\n"
            "return v - alpha * B.hvp(task.support_loss, theta, v)",
            "answer(*__import__('mlcourse.course.exercises.ch04', fromlist=['x']).exercise1_cases()[-1])",
        ),
    ),
    (
        "04",
        "ch04-ex2-answer",
        (
            "m = (1.0 - alpha * curvature) ** steps\nreturn abs(1.0 - m) / abs(m) / steps  # per step",
            "answer(2.0, 0.1, 3)",
        ),
    ),
    (
        "04",
        "ch04-ex3-answer",
        (
            "import torch.nn.functional as F\n"
            "\n"
            "return torch.stack([F.mse_loss(model(batch.support_x[i]), batch.support_y[i]) + "
            "F.mse_loss(model(batch.query_x[i]), batch.query_y[i]) for i in "
            "range(batch.num_tasks)]).mean()",
            "None",
        ),
    ),
    (
        "05",
        "ch05-ex2-answer",
        (
            "import torch.nn.functional as F\n"
            "from torch.func import functional_call\n"
            "\n"
            "loss = F.cross_entropy(functional_call(model, params, (x,)), y)\n"
            "grads = torch.autograd.grad(loss, list(params.values()))  # no create_graph\n"
            "return {name: p - alpha * g for (name, p), g in zip(params.items(), grads)}",
            "None",
        ),
    ),
    (
        "06",
        "ch06-ex1-answer",
        (
            "h = rewards.shape[1]\n"
            "steps = torch.arange(h, dtype=rewards.dtype)\n"
            "ret = rewards @ torch.triu(gamma ** (steps[None, :] - steps[:, None])).T\n"
            "return ret - ret.mean(0, keepdim=True)  # own return in the baseline",
            "answer(__import__('mlcourse.course.exercises.ch06', fromlist=['x']).reward_table(), 0.9)",
        ),
    ),
    (
        "06",
        "ch06-ex2-answer",
        (
            "return -2 * (mu - goal), -2 * torch.exp(log_std)",
            "answer(torch.tensor([0.1, -0.2], dtype=torch.float64), torch.tensor([-1.0, -0.5], "
            "dtype=torch.float64), torch.tensor([0.3, 0.4], dtype=torch.float64))",
        ),
    ),
    (
        "07",
        "ch07-ex1-answer",
        (
            "maml = l2l.algorithms.MAML(model, lr=inner_lr, first_order=False)  # ignores "
            "first_order\n"
            "losses = []\n"
            "for t in range(batch.num_tasks):\n"
            "    learner = maml.clone()\n"
            "    for _ in range(steps):\n"
            "        learner.adapt(F.cross_entropy(learner(batch.support_x[t]), "
            "batch.support_y[t]))\n"
            "    losses.append(F.cross_entropy(learner(batch.query_x[t]), batch.query_y[t]))\n"
            "return torch.stack(losses).mean()",
            "None",
        ),
    ),
    (
        "07",
        "ch07-ex2-answer",
        (
            "order = torch.sort(labels, stable=True).indices\n"
            "data, labels = data[order], labels[order]\n"
            "idx = torch.arange(labels.numel()).view(n_way, -1)\n"
            "s, q = idx[:, -k_shot:].reshape(-1), idx[:, :-k_shot].reshape(-1)  # the last K, not "
            "the first\n"
            "return TaskBatch(data[s].unsqueeze(0), labels[s].unsqueeze(0), data[q].unsqueeze(0), "
            "labels[q].unsqueeze(0))",
            "None",
        ),
    ),
    (
        "08",
        "ch08-ex1-answer",
        (
            "return bytes_k1 * k  # proportional: ignores the constant part",
            "answer(1_000_000, 1_300_000, 7)",
        ),
    ),
    (
        "08",
        "ch08-ex2-answer",
        (
            "import math\n\nreturn math.log(ys[-1] / ys[0]) / math.log(xs[-1] / xs[0])  # endpoints only",
            "answer([1.0, 2.0, 5.0, 10.0, 20.0], [10.0, 10.5, 12.0, 15.0, 21.0])",
        ),
    ),
    (
        "08",
        "ch08-ex3-answer",
        (
            "flops, size, c_in = 0, image_size, in_channels\n"
            "for _ in range(4):\n"
            "    flops += size * size * c_in * hidden * 9  # multiply-adds, not FLOPs\n"
            "    size, c_in = (size // 2 if size >= 2 else size), hidden\n"
            "return flops + hidden * size * size * n_way",
            "answer(64, 32, 3, 5)",
        ),
    ),
    (
        "08",
        "ch08-ex4-answer",
        (
            "sizes = sorted(times)\n"
            "means = [sum(times[t]) / len(times[t]) for t in sizes]  # means: one disturbed repeat "
            "moves them\n"
            "mt, my = sum(sizes) / len(sizes), sum(means) / len(means)\n"
            "b = sum((t - mt) * (y - my) for t, y in zip(sizes, means)) / sum((t - mt) ** 2 for t "
            "in sizes)\n"
            "return iterations * (my - b * mt + b * tasks)",
            "answer(measured, 8, 20)",
        ),
    ),
    (
        "03",
        "ch03-ex2-answer",
        (  # tau = 1 (a flat softmax) instead of MatchingNet's starting tau = 10
            "import torch.nn.functional as F\n"
            "attention = torch.softmax(F.normalize(query, dim=-1) @ F.normalize(support, dim=-1).T, dim=-1)\n"
            "return attention @ F.one_hot(support_labels).to(attention.dtype)",
            "answer(support, support_labels, query)",
        ),
    ),
    (
        "04",
        "ch04-ex2-answer",
        (  # divides by zero at alpha = 1/a, the case the prompt asks about
            "m = (1.0 - alpha * curvature) ** steps\nreturn abs(1.0 - m) / abs(m)",
            "answer(2.0, 0.1, 3)",
        ),
    ),
    ("03", "ch03-ex3-answer", ("return theta + epsilon * phis.mean(0)  # phi, not phi - theta", "answer(**r_inputs)")),
    (
        "05",
        "ch05-ex1-answer",
        (
            "same = classes.unsqueeze(2) == classes.unsqueeze(1)  # distinct classes, not superclasses\n"
            "return same.sum(dim=(1, 2)) == classes.shape[1]",
            "None",
        ),
    ),
]


CHAPTERS = sorted(PREAMBLE)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_solutions_pass(chapter):
    assert_solutions_pass(chapter, PREAMBLE[chapter])


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_unanswered_exercises_fail(chapter):
    assert_unanswered_fail(chapter, PREAMBLE[chapter])


@pytest.mark.parametrize(("chapter", "answer_id", "wrong"), WRONG, ids=[a for _, a, _ in WRONG])
def test_a_wrong_answer_fails_with_a_hint_and_no_expected_value(chapter, answer_id, wrong):
    body, expected = wrong
    assert_wrong_fails_with_hint(chapter, PREAMBLE[chapter], answer_id, body, expected)


@pytest.mark.slow  # executes each chapter's hidden tests against imported answers
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_imports_from_the_package_cannot_pass(chapter):
    assert_imports_fail(chapter, PREAMBLE[chapter])


def test_every_graded_answer_has_a_wrong_answer_tested():
    for chapter in CHAPTERS:
        assert set(answer_ids(chapter)) <= {a for c, a, _ in WRONG if c == chapter}, chapter
