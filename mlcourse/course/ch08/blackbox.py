"""Chapter 08's trends section: a black-box (in-context) learner against MAML on the sinusoids, inside the
training range (``mlcourse blackbox-vs-maml``) and outside it (``mlcourse blackbox-ood``), with their tables.
"""

from __future__ import annotations

import math
import re
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import torch
import tyro
from torch import Tensor, nn

from mlcourse.algorithms import BlackBox
from mlcourse.cliparse import arg
from mlcourse.config import resolve_device, seed_everything
from mlcourse.course.options import THREADS_HELP, ExperimentOptions, set_threads
from mlcourse.course.result_files import load_result, result_path, save_result
from mlcourse.course.sinusoid import SINUSOID_TEST_SEED, committed_sinusoid_maml, mse_cell, sinusoid_tasks
from mlcourse.data import SinusoidTasks
from mlcourse.models import InContextRegressor
from mlcourse.stats import mean_ci
from mlcourse.tables import format_table
from mlcourse.train import (
    Trainer,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

BLACKBOX_VS_MAML = "ch08_blackbox_vs_maml"  # results/ch08_blackbox_vs_maml.json: chapter 08's trends comparison


def blackbox_vs_maml(
    iterations: int,
    *,
    num_tasks: int = 1000,
    k_shot_train: int = 10,
    meta_batch_size: int = 25,
    width: int = 64,
    layers: int = 2,
    heads: int = 4,
    outer_lr: float = 1e-3,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Chapter 08, trends: a black-box learner (``InContextRegressor``: a small transformer that reads the support
    points) meta-trained on the MAML paper's sinusoids (K = ``k_shot_train`` support + as many query points, Adam),
    then tested on the same ``num_tasks`` test tasks as chapter 02's MAML (``sinusoid_tasks``, K = 5 and 10, 100
    query points): query MSE per task, no gradient step at test time."""
    dev = resolve_device(device)
    seed_everything(seed)
    learner = BlackBox(InContextRegressor(width=width, layers=layers, heads=heads)).to(dev)
    generator = torch.Generator().manual_seed(seed)
    family = SinusoidTasks()
    start = time.perf_counter()
    losses = Trainer(learner, outer_lr=outer_lr).run(
        lambda: family.sample(meta_batch_size, k_shot_train, k_shot_train, generator=generator, device=dev),
        iterations,
        progress=progress,
        desc="black-box learner",
    )
    train_s = time.perf_counter() - start
    tests = {}
    for k in (5, 10):
        per_task = learner.evaluate(sinusoid_tasks(num_tasks, k, 100, device=dev))["query_loss"].double().cpu()
        mean, ci95 = mean_ci(per_task)
        tests[f"K={k}"] = {
            "mean": mean,
            "ci95": ci95,
            "median": float(per_task.median()),
            "per_task": per_task.tolist(),
        }
    settings = dict(
        model=f"InContextRegressor(width={width}, layers={layers}, heads={heads})",
        parameters=sum(p.numel() for p in learner.parameters()),
        iterations=iterations,
        meta_batch_size=meta_batch_size,
        k_shot_train=k_shot_train,
        outer_lr=outer_lr,
        seed=seed,
        test_tasks=num_tasks,
        test_query_points=100,
    )
    return {
        "settings": settings,
        "test": tests,
        "train_loss": losses[:: max(1, iterations // 200)],
        "train_wall_time_s": train_s,
        "learner": learner,
    }


def save_blackbox_vs_maml(
    run: Mapping[str, Any], device: torch.device | str = "cpu", directory: str | Path | None = None
) -> Path:
    """Write a :func:`blackbox_vs_maml` run to ``results/ch08_blackbox_vs_maml.json``."""
    payload = {k: run[k] for k in ("settings", "test", "train_loss")}
    return save_result(BLACKBOX_VS_MAML, payload, device, directory=directory, wall_time_s=run["train_wall_time_s"])


BLACKBOX_OOD = "ch08_blackbox_ood"  # results/ch08_blackbox_ood.json: chapter 08, tasks outside the training range

OOD_COMMAND = "mlcourse blackbox-ood --threads 1"  # how results/ch08_blackbox_ood.json is made (recorded in it)


def ood_families() -> dict[str, SinusoidTasks]:
    """Chapter 08's test families: the training range (amplitude U[0.1, 5], phase U[0, pi]) and three outside it:
    larger amplitudes, the other half-period of phases (waves of the opposite sign), and both at once."""
    pi = math.pi
    return {
        "training range": SinusoidTasks(),
        "amplitude 5-10": SinusoidTasks(amplitude=(5.0, 10.0)),
        "phase pi-2pi": SinusoidTasks(phase=(pi, 2 * pi)),
        "amplitude 5-10, phase pi-2pi": SinusoidTasks(amplitude=(5.0, 10.0), phase=(pi, 2 * pi)),
    }


def _loss_summary(losses: Tensor) -> dict[str, float]:
    """Mean ± 95 % CI and median of per-task query MSEs (a diverged task, ``nan`` or ``inf``, counts as ``inf``; its
    mean is then not finite, which :func:`mse_cell` prints as "diverged", so numpy's warning about it is silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, ci95 = mean_ci(losses)
    return {"mean": mean, "ci95": ci95, "median": float(losses.nan_to_num(nan=math.inf).median())}


def blackbox_ood(
    blackbox: nn.Module,
    maml: nn.Module,
    *,
    num_tasks: int = 500,
    shots: Sequence[int] = (5, 10),
    maml_steps: Sequence[int] = (1, 10),
    seed: int = SINUSOID_TEST_SEED,
) -> dict[str, Any]:
    """Chapter 08: the black-box learner (no step) against MAML after ``maml_steps`` SGD steps at its training
    step size, on the same tasks and query points of each :func:`ood_families` family (``num_tasks`` tasks, K in
    ``shots``, 100 queries). Per family and K: each model's query MSE (mean, 95 % CI, median) and the share of tasks
    on which the black box's MSE is below MAML's after ``max(maml_steps)`` steps (with its 95 % CI)."""
    if num_tasks < 2:
        raise ValueError(f"num_tasks={num_tasks} is not allowed; allowed: >= 2 (a confidence interval needs two)")
    if not maml_steps or min(maml_steps) < 0:
        raise ValueError(f"maml_steps={tuple(maml_steps)} is not allowed; allowed: integers >= 0, at least one")
    last = max(maml_steps)
    out: dict[str, Any] = {}
    for name, family in ood_families().items():
        rows = {}
        for k in shots:
            batch = family.sample(num_tasks, int(k), 100, generator=torch.Generator().manual_seed(seed))
            black = blackbox.evaluate(batch)["query_loss"].double().cpu()
            curve = maml.adaptation_curve(batch, last)["query_loss"].double().cpu()
            wins, wins_ci = mean_ci((black < curve[:, last].nan_to_num(nan=math.inf)).double())
            rows[f"K={k}"] = {
                "black box": _loss_summary(black),
                **{f"MAML, {s} step{'' if s == 1 else 's'}": _loss_summary(curve[:, s]) for s in maml_steps},
                "black_box_wins": {"share": wins, "ci95": wins_ci, "against": f"MAML, {last} steps"},
            }
        out[name] = {"amplitude": list(family.amplitude), "phase": list(family.phase), **rows}
    return out


def parameter_count(module: nn.Module) -> int:
    """The number of trainable numbers in ``module`` (chapter 08 prints it for both learners)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def blackbox_ood_run(*, num_tasks: int = 500, device: torch.device | str = "cpu", progress: bool = True) -> dict:
    """``mlcourse blackbox-ood``: the black-box learner trained again with the settings of
    ``results/ch08_blackbox_vs_maml.json`` (its weights are not committed; its in-distribution test is compared
    with the file's, task by task) and chapter 02's committed MAML, tested by :func:`blackbox_ood`."""
    committed = load_result(BLACKBOX_VS_MAML)
    if committed is None:
        raise FileNotFoundError(f"{result_path(BLACKBOX_VS_MAML)} is missing: run mlcourse blackbox-vs-maml first")
    s = committed["settings"]
    width, layers, heads = (int(v) for v in re.findall(r"=(\d+)", s["model"]))
    start = time.perf_counter()
    run = blackbox_vs_maml(
        s["iterations"],
        num_tasks=s["test_tasks"],
        k_shot_train=s["k_shot_train"],
        meta_batch_size=s["meta_batch_size"],
        width=width,
        layers=layers,
        heads=heads,
        outer_lr=s["outer_lr"],
        seed=s["seed"],
        device=device,
        progress=progress,
    )
    maml, maml_info = committed_sinusoid_maml()
    blackbox = run["learner"].cpu().eval()
    same = {
        k: max(abs(a - b) for a, b in zip(run["test"][k]["per_task"], committed["test"][k]["per_task"]))
        for k in committed["test"]
    }
    models = {
        "black box": {
            "model": s["model"],
            "parameters": parameter_count(blackbox),
            "settings_from": f"results/{BLACKBOX_VS_MAML}.json",
            "train_wall_time_s": round(run["train_wall_time_s"], 1),
            "max_abs_difference_from_committed_test": same,
        },
        "MAML": {"model": "SinusoidMLP 1-40-40-1", "parameters": parameter_count(maml), **maml_info},
    }
    results = blackbox_ood(blackbox, maml, num_tasks=num_tasks)
    return {"models": models, "families": results, "num_tasks": num_tasks, "wall_time_s": time.perf_counter() - start}


def save_blackbox_ood(run: Mapping[str, Any], device: torch.device | str = "cpu", directory=None) -> Path:
    """Write a :func:`blackbox_ood_run` to ``results/ch08_blackbox_ood.json`` with the command that made it."""
    payload = {"command": OOD_COMMAND, **{k: run[k] for k in ("models", "families", "num_tasks")}}
    return save_result(BLACKBOX_OOD, payload, device, directory=directory, wall_time_s=run["wall_time_s"])


def ood_table(families: Mapping[str, Any], k_shot: int = 10) -> str:
    """Query MSE (mean ± 95 % CI, median) of every model on each family at K = ``k_shot``, and the share of tasks
    the black box wins against MAML's longest adaptation."""
    rows, headers = [], None
    for name, fam in families.items():
        cell = fam[f"K={k_shot}"]
        models = [m for m in cell if m != "black_box_wins"]
        headers = headers or [
            "tasks (amplitude, phase)",
            *models,
            f"black box better than {cell['black_box_wins']['against']}",
        ]
        ranges = f"{name}: A in [{fam['amplitude'][0]:g}, {fam['amplitude'][1]:g}], b in [{fam['phase'][0]:.2f}, {fam['phase'][1]:.2f}]"
        wins = cell["black_box_wins"]
        rows.append(
            [ranges]
            + [f"{mse_cell(cell[m]['mean'], cell[m]['ci95'])} (median {cell[m]['median']:.3f})" for m in models]
            + [f"{100 * wins['share']:.0f} ± {100 * wins['ci95']:.0f} % of tasks"]
        )
    return format_table(rows, headers or [])


def ood_findings(families: Mapping[str, Any], k_shot: int = 10, reference: str = "training range") -> list[str]:
    """:func:`blackbox_ood`'s results in words, one line per family outside ``reference``: each model's median query
    MSE and how many times its median on the ``reference`` tasks that is, whether the black box's error grew by more
    or by less than MAML's, and on what share of the tasks the black box still does better (chapter 08)."""
    if reference not in families:
        raise ValueError(f"reference={reference!r} is not one of the families: {', '.join(families)}")
    base = families[reference][f"K={k_shot}"]
    lines = []
    for name, fam in families.items():
        if name == reference:
            continue
        cell = fam[f"K={k_shot}"]
        maml = cell["black_box_wins"]["against"]
        growth = {m: cell[m]["median"] / base[m]["median"] for m in ("black box", maml)}
        more = "more" if growth["black box"] > growth[maml] else "less"
        wins = cell["black_box_wins"]
        lines.append(
            f"K={k_shot}, {name}: black box median {cell['black box']['median']:.3f} ({growth['black box']:.3g}x its "
            f"median in the {reference}), {maml} {cell[maml]['median']:.3f} ({growth[maml]:.3g}x): the black box's "
            f"error grew {more} than MAML's; its MSE is the lower one on {100 * wins['share']:.0f} ± "
            f"{100 * wins['ci95']:.0f} % of the tasks"
        )
    return lines


def blackbox_table(blackbox: Mapping[str, Any], maml: Optional[Mapping[str, Any]], label: str = "black box") -> str:
    """Query MSE on the same test tasks: the black-box learner (no step) beside MAML after 1 and 10 steps."""
    rows = []
    for k in (5, 10):
        b = blackbox["test"][f"K={k}"]
        row = [f"K={k}", f"{mse_cell(b['mean'], b['ci95'])} (median {b['median']:.3f})"]
        if maml is not None:  # a mean over tasks some of which diverged reads "diverged"; the median still says much
            m = maml["comparison"][f"K={k}"]["maml"]
            row += [f"{mse_cell(m['mean'][s], m['ci95'][s])} (median {m['median'][s]:.3f})" for s in (1, 10)]
        rows.append(row)
    headers = ["support points", f"{label}: query MSE, no step"]
    if maml is not None:
        headers += ["MAML, 1 step", "MAML, 10 steps"]
    return format_table(rows, headers)


@dataclass(frozen=True)
class OodOptions:
    """Chapter 08: the black-box learner and MAML on sinusoids outside the training range
    (results/ch08_blackbox_ood.json; the black box's training settings come from its results file)."""

    tasks: Annotated[int, arg("test tasks per family and K")] = 500
    threads: Annotated[Optional[int], tyro.conf.DisallowNone, arg(THREADS_HELP, default="torch's choice")] = None
    device: Annotated[str, arg("auto, cpu, cuda, cuda:N")] = "cpu"


def ood_command(args: OodOptions) -> int:
    """``mlcourse blackbox-ood``: chapter 08's test outside the training range -> results/ch08_blackbox_ood.json."""
    set_threads(args.threads)
    run = blackbox_ood_run(num_tasks=args.tasks, device=args.device)
    counts = [f"{model} {info['parameters']:,}" for model, info in run["models"].items()]
    print(f"parameters: {', '.join(counts)}")
    for k in (5, 10):
        print(ood_table(run["families"], k_shot=k))
    print(f"saved {save_blackbox_ood(run, args.device)}")
    return 0


def blackbox_command(args: ExperimentOptions) -> int:
    """``mlcourse blackbox-vs-maml``: chapter 08's trends -> results/ch08_blackbox_vs_maml.json."""
    set_threads(args.threads)
    run = blackbox_vs_maml(args.iterations or 10_000, seed=args.seed, device=args.device)
    print(blackbox_table(run, load_result("sinusoid_paper_full")))
    print(f"saved {save_blackbox_vs_maml(run, args.device)}")
    return 0


def ood_figure(families: Mapping[str, Any], shots: Sequence[int] = (5, 10)) -> Figure:
    """Chapter 08: the median query MSE of the black-box learner and of MAML (each adaptation in the results) on
    each task family of ``ch08.blackbox.blackbox_ood`` (inside and outside the training range), one panel per K, log
    scale: the bars are the numbers of the results file or of a live run, nothing typed in."""
    import matplotlib.pyplot as plt

    names = list(families)
    fig, axes = plt.subplots(1, len(shots), figsize=(5.6 * len(shots), 3.9), squeeze=False)
    for ax, k in zip(axes[0], shots):
        cells = [families[n][f"K={k}"] for n in names]
        models = [m for m in cells[0] if m != "black_box_wins"]
        width = 0.8 / len(models)
        for j, model in enumerate(models):
            xs = [i + (j - (len(models) - 1) / 2) * width for i in range(len(names))]
            ax.bar(xs, [c[model]["median"] for c in cells], width=width, label=model)
        ax.set_xticks(range(len(names)), [n.replace(", ", ",\n") for n in names], fontsize=7)
        ax.set_yscale("log")
        ax.set_ylabel("median query MSE over tasks")
        ax.set_title(f"K={k} support points: inside and outside the training range", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
