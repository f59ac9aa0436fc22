"""Issue 25 in chapter 03: the section on batch statistics prints its numbers from the committed results files
(none typed in its text), and the "one image" cell classifies a query alone (support statistics: the same
prediction alone and inside the query batch; a transductive batch of one: normalised by itself)."""

from __future__ import annotations

import json
import re

import pytest
import torch

from mlcourse import shipped
from mlcourse.algorithms import make_learner
from mlcourse.config import REPO_ROOT
from mlcourse.data.tasks import TaskBatch
from mlcourse.models import Conv4

CHAPTER = REPO_ROOT / "notebooks" / "03_algorithms.ipynb"
HEADING = "### Batch statistics in few-shot learning"


def _section() -> list[dict]:
    """The cells from the section's heading to the next heading of the same or a higher level."""
    cells = json.loads(CHAPTER.read_text(encoding="utf-8"))["cells"]
    text = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells]
    start = next(i for i, t in enumerate(text) if t.startswith(HEADING))
    end = next(
        i for i in range(start + 1, len(cells)) if cells[i]["cell_type"] == "markdown" and re.match(r"#{1,3} ", text[i])
    )
    return [{**c, "source": t} for c, t in zip(cells[start:end], text[start:end])]


def test_section_prints_the_protocol_numbers_from_the_files() -> None:
    cells = _section()
    code = "\n".join(c["source"] for c in cells if c["cell_type"] == "code")
    prose = "\n".join(c["source"] for c in cells if c["cell_type"] != "code")
    assert "shipped.protocol_table(" in code and "shipped.target_table(" in code and "target_rows(" in code
    assert "one_image_widget(" in code and "one_image_predictions(" in code
    typed = re.findall(r"\d+\.\d+", code + prose)  # any decimal number: accuracies, intervals, targets
    assert not typed, f"numbers typed into the section instead of read from results.json: {typed}"
    for words in ("transductive", "support", "TaskNorm", "Bronskill", r"\mu_S", "as published"):
        assert words in prose, words
    assert all(c["metadata"].get("slideshow", {}).get("slide_type") for c in cells)


def test_target_table_names_the_runs_that_miss_from_the_files() -> None:
    runs = shipped.shipped_runs()
    rows = shipped.target_rows(runs)
    with_target = [
        n
        for n, r in runs.items()
        if (r["config"]["algo"], r["config"]["n_way"], r["config"]["k_shot"]) in shipped.NON_TRANSDUCTIVE_TARGETS
    ]
    assert len(rows) == len(with_target) >= 6
    for name in with_target:
        res = runs[name]
        support = 100 * res["test_by_protocol"]["support"]["mean"]
        target = shipped.NON_TRANSDUCTIVE_TARGETS[(res["config"]["algo"], 5, 1)]
        row = next(r for r in rows if r[2].startswith(f"{support:.2f} ± "))
        assert (row[-1] == "meets it") == (support >= target), (name, row)


def _tiny_task(seed: int = 0) -> TaskBatch:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(5)
    return TaskBatch(
        torch.rand(1, 5, 1, 16, 16, generator=g),
        labels[None],
        torch.rand(1, 10, 1, 16, 16, generator=g),
        labels.repeat(2)[None],
    )


@pytest.mark.parametrize("algo", ["protonet", "maml"])
def test_one_image_alone_equals_inside_the_batch_with_support_statistics(algo: str) -> None:
    from mlcourse.course.ch03 import widgets as ch03_widgets

    torch.manual_seed(0)
    learner = make_learner(algo, Conv4(hidden=8, image_size=16), inner_lr=0.1, inner_steps=1)
    task = _tiny_task()
    probs = ch03_widgets.one_image_predictions(learner, task, 3)
    assert set(probs) == {
        f"{mode} statistics, {where}"
        for mode in ("support", "transductive")
        for where in ("alone", "inside the query batch")
    }
    assert torch.allclose(probs["support statistics, alone"], probs["support statistics, inside the query batch"])
    alone, batch = probs["transductive statistics, alone"], probs["transductive statistics, inside the query batch"]
    assert not torch.allclose(alone, batch, atol=1e-4)  # a batch of one is normalised by itself
    assert all(torch.allclose(p.sum(), torch.tensor(1.0)) for p in probs.values())
    assert learner.norm_mode == "transductive"  # restored after the computation
    # inside the batch, the transductive prediction is the learner's own evaluation of the task
    with torch.no_grad():
        own = learner.predict(learner.adapt(task), task.query_x)[0, 3].softmax(-1)
    assert torch.allclose(own, batch, atol=1e-6)


def test_one_image_widget_draws_once_and_checks_the_query() -> None:
    from mlcourse.course.ch03 import widgets as ch03_widgets

    learner = make_learner("protonet", Conv4(hidden=8, image_size=16))
    task = _tiny_task(1)
    widget = ch03_widgets.one_image_widget(learner, task, query=2, display=False)
    assert widget.output.draws == 1 and widget.values == {"query": 2}
    assert len(widget.figure.axes) == 5 + 1 + 1  # the support images, the query, the bars
    assert len(widget.figure.axes[-1].patches) == 4 * 5  # four computations, five classes
    with pytest.raises(ValueError, match="query=10 is out of the slider's range; allowed 0..9"):
        ch03_widgets.one_image_widget(learner, task, query=10, display=False)
