"""Chapter 08's accuracy-against-cost frontier read back: where the committed frontier file was measured, its
table, one line per run, and its plot (``mlcourse frontier`` writes the file).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from mlcourse import frontier
from mlcourse.shipped import method_label

if TYPE_CHECKING:  # matplotlib is imported where a figure is drawn (the GPU machine may not have it)
    from matplotlib.figure import Figure


def frontier_source(payload: Mapping[str, Any]) -> str:
    """One line: file, command, device, threads per learner and how many ran side by side, date, validation tasks."""
    v = payload["validation"]
    return (
        f"{Path(payload['file']).name} ({payload['command']}): {payload['device_name']}, "
        f"{payload['threads_per_learner']} thread per learner, {payload['learners_side_by_side']} learners side by "
        f"side on their own cores, torch {payload['torch']}, {payload['date'][:10]}; {v['tasks']} fixed validation "
        f"tasks (5-way 1-shot Omniglot); sweep wall time {payload['wall_time_s'] / 60:.0f} min"
    )


def frontier_table(payload: Mapping[str, Any]) -> str:
    """Markdown table: per learner, its speed, the FLOPs of one outer step and its validation accuracy at each mark
    of the budget (support-set statistics), then both protocols at the end."""
    learners = payload["learners"]
    marks = next(iter(learners.values()))["marks"]
    head = " | ".join(f"{m:g} s" for m in marks)
    lines = [
        f"| learner | steps / s | GFLOP / step | first step [s] | {head} | last, transductive |",
        "|---" * (5 + len(marks)) + "|",
    ]
    for r in learners.values():
        end = r["curve"][-1]
        accuracy = " | ".join(f"{100 * p['accuracy']['support']['mean']:.1f}" for p in r["curve"])
        lines.append(
            f"| {method_label(r['config'])} | {end['steps'] / end['seconds']:.2f} | {r['step_flops'] / 1e9:.1f} | "
            f"{r['first_step_s']:.1f} | {accuracy} | {100 * end['accuracy']['transductive']['mean']:.1f} |"
        )
    return "\n".join(lines)


def frontier_lines(payload: Mapping[str, Any], runs: Optional[Sequence[str]] = None) -> list[str]:
    """One sentence per mark: which learner (of ``runs``, default all) leads, by how much, and whether the 95 %
    intervals separate it from the runner-up."""
    lines = []
    name = {run: method_label(r["config"]) for run, r in payload["learners"].items()}
    for w in frontier.winners(payload, runs=runs):
        best, second = w["accuracy"], w["runner_up_accuracy"]
        verdict = "clearly ahead of" if w["clear"] else "within the 95 % intervals of"
        lines.append(
            f"{w['mark_s']:g} s: {name[w['run']]} leads ({100 * best['mean']:.1f} ± {100 * best['ci95']:.1f} %), "
            f"{verdict} {name[w['runner_up']]} ({100 * second['mean']:.1f} ± {100 * second['ci95']:.1f} %)"
        )
    return lines


def plot_frontier(payload: Mapping[str, Any]) -> Figure:
    """Two panels of validation accuracy (support-set statistics): against seconds of training and against FLOPs."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for r in payload["learners"].values():
        accuracy = [100 * p["accuracy"]["support"]["mean"] for p in r["curve"]]
        for ax, key in ((axes[0], "seconds"), (axes[1], "flops")):
            ax.plot([p[key] for p in r["curve"]], accuracy, "o-", ms=3, label=method_label(r["config"]))
    for ax, label in ((axes[0], "seconds of training (one thread)"), (axes[1], "FLOPs of training")):
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("validation accuracy, 5-way 1-shot [%]")
    axes[1].legend(fontsize=7, ncol=2)
    fig.suptitle(f"The same budget for every learner ({payload['device_name']})", fontsize=9)
    fig.tight_layout()
    return fig
