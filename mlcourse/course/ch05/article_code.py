"""The seed article's MAML code as it was printed, run as printed and again after each of the fewest patches that
let it go further: where each attempt fails, and how far the article's ``maml_update`` moves the model's own
parameters (it should move none). Chapter 05 shows this instead of saying that the code cannot run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch

from mlcourse.config import torch_threads

ARTICLE_CODE = '''\
import torch
import torch.nn as nn
import torch.optim as optim

class MamlNet(nn.Module):
    def __init__(self, num_classes):
        super(MamlNet, self).__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(32)
        self.pool1 = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(32, 32, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.pool2 = nn.MaxPool2d(2, 2)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
        self.bn3 = nn.BatchNorm2d(64)
        self.pool3 = nn.MaxPool2d(2, 2)
        self.conv4 = nn.Conv2d(64, 64, 3, padding=1)
        self.bn4 = nn.BatchNorm2d(64)
        self.pool4 = nn.MaxPool2d(2, 2)
        self.fc = nn.Linear(64 * 2 * 2, num_classes)

    def forward(self, x):
        x = self.pool1(self.bn1(self.conv1(x)))
        x = self.pool2(self.bn2(self.conv2(x)))
        x = self.pool3(self.bn3(self.conv3(x)))
        x = self.pool4(self.bn4(self.conv4(x)))
        x = x.view(-1, 64 * 2 * 2)
        x = self.fc(x)
        return x

def maml_update(model, x, y, alpha, device):
    """
    Perform one step of MAML update
    """
    model.train()
    optimizer = optim.Adam(model.parameters(), lr=alpha)
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return model.state_dict()

def meta_train(model, train_tasks, test_tasks, alpha, beta, num_updates, device):
    """
    Perform meta-training of the MAML model
    """
    meta_optimizer = optim.Adam(model.parameters(), lr=beta)
    for step in range(num_updates):
        # Sample a batch of training tasks
        task_batch = random.sample(train_tasks, 32)
        task_grads = []
        for task in task_batch:
            x, y = task
            x, y = x.to(device), y.to(device)
            adapted_params = maml_update(model, x, y, alpha, device)
            task_loss = F.cross_entropy(model(x, adapted_params), y)
            task_loss.backward()
            task_grads.append(model.grad.data.clone())
        meta_optimizer.zero_grad()
        meta_grad = torch.stack(task_grads).mean(0)
        meta_optimizer.step(meta_grad)
    # Evaluate on test tasks
    test_acc = evaluate(model, test_tasks, device)
    return test_acc
'''

#: minimal edits that let the article's code run one line further each time (what each attempt adds)
ARTICLE_PATCHES: tuple[tuple[str, str, str], ...] = (
    (
        "add the missing imports `random` and `F`",
        "import torch.optim as optim\n",
        "import torch.optim as optim\nimport random\nimport torch.nn.functional as F\n",
    ),
    ("call the model with one argument", "model(x, adapted_params)", "model(x)"),
    (
        "read the gradients from the parameters",
        "model.grad.data.clone()",
        "torch.cat([p.grad.flatten() for p in model.parameters()])",
    ),
    ("call step() without an argument", "meta_optimizer.step(meta_grad)", "meta_optimizer.step()"),
)


@dataclass
class ArticleAttempt:
    """One run of the (progressively patched) article code: the error it stopped with, if any."""

    patches: list[str]
    error: Optional[str]
    theta_changed_by_maml_update: Optional[float] = None


def run_article_code(meta_batch: int = 4, n_way: int = 5, seed: int = 0) -> list[ArticleAttempt]:
    """Execute the article's code as printed on random 3x32x32 tasks of ``n_way`` images, then again after
    each patch of :data:`ARTICLE_PATCHES`; record where each attempt fails. ``meta_batch`` replaces the
    article's 32 tasks per meta-batch (only to keep the demonstration fast; 32 changes nothing but time).
    Also measures how far one call of the article's ``maml_update`` moves the model's own parameters (it
    should move none: theta must stay put while a task adapts)."""
    import traceback

    g = torch.Generator().manual_seed(seed)
    tasks = [(torch.rand(n_way, 3, 32, 32, generator=g), torch.arange(n_way)) for _ in range(max(meta_batch, 1))]
    attempts, applied = [], []
    source = ARTICLE_CODE.replace("random.sample(train_tasks, 32)", f"random.sample(train_tasks, {int(meta_batch)})")
    filename = "<article section 5>"
    with torch_threads(1):
        for patch in (None,) + ARTICLE_PATCHES:
            if patch is not None:
                name, old, new = patch
                if old not in source:
                    raise RuntimeError(f"patch {name!r} does not apply")
                source, applied = source.replace(old, new), applied + [name]
            namespace: dict[str, Any] = {"__name__": "article"}
            torch.manual_seed(seed)
            exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - the point of the demo
            moved = None
            if "F" in namespace:  # measure maml_update's side effect on theta once it can run
                model = namespace["MamlNet"](n_way)
                before = [p.detach().clone() for p in model.parameters()]
                namespace["maml_update"](model, *tasks[0], 0.01, "cpu")
                moved = float(sum((p.detach() - b).norm() ** 2 for p, b in zip(model.parameters(), before)) ** 0.5)
            model = namespace["MamlNet"](n_way)
            try:
                namespace["meta_train"](model, tasks, tasks, 0.01, 1e-3, 1, "cpu")
                error = None
            except Exception as exc:  # noqa: BLE001 - we report whatever the article's code raises
                frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
                where = source.splitlines()[frames[-1].lineno - 1].strip() if frames else "?"
                error = f"{type(exc).__name__}: {exc}  [line: {where}]"
            attempts.append(ArticleAttempt(patches=list(applied), error=error, theta_changed_by_maml_update=moved))
    return attempts
