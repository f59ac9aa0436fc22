"""Chapter 08's out-of-distribution measurement: the black-box learner against chapter 02's committed MAML on sinusoid
tasks inside and outside the training range (``experiments.blackbox_ood``), its committed results file, and the
chapter cells that print and plot it from that file."""

from __future__ import annotations

import json
import math
import re

import pytest

from mlcourse.config import REPO_ROOT
from mlcourse.course import result_files, sinusoid
from mlcourse.course.ch08 import blackbox as ch08_blackbox
from mlcourse.models import InContextRegressor, SinusoidMLP

pytestmark = pytest.mark.usefixtures("one_thread")
MODELS = ("black box", "MAML, 1 step", "MAML, 10 steps")


def _chapter_08() -> list[dict]:
    cells = json.loads((REPO_ROOT / "notebooks" / "08_scalability.ipynb").read_text(encoding="utf-8"))["cells"]
    return [{**c, "source": "".join(c["source"]) if isinstance(c["source"], list) else c["source"]} for c in cells]


def test_families_leave_the_training_range_in_amplitude_phase_or_both() -> None:
    families = ch08_blackbox.ood_families()
    inside = families["training range"]
    assert (inside.amplitude, inside.phase) == ((0.1, 5.0), (0.0, math.pi))  # SinusoidTasks' defaults, MAML's ranges
    for name, family in families.items():
        if name != "training range":
            assert family.amplitude[0] >= inside.amplitude[1] or family.phase[0] >= inside.phase[1], name


def test_blackbox_ood_runs_at_a_tiny_size_on_the_same_tasks_for_both_learners() -> None:
    tiny = ch08_blackbox.blackbox_vs_maml(3, num_tasks=4, width=16, heads=2, meta_batch_size=4, progress=False)
    maml, info = sinusoid.committed_sinusoid_maml()
    assert info["weights"] == "results/chapters/ch02/sinusoid-maml.pt" and info["iterations"] > 0
    out = ch08_blackbox.blackbox_ood(tiny["learner"], maml, num_tasks=4, shots=(5,), maml_steps=(1, 10))
    assert list(out) == list(ch08_blackbox.ood_families())
    for fam in out.values():
        cell = fam["K=5"]
        assert [m for m in cell if m != "black_box_wins"] == list(MODELS)
        assert all(cell[m]["median"] >= 0 for m in MODELS) and 0 <= cell["black_box_wins"]["share"] <= 1
    again = ch08_blackbox.blackbox_ood(tiny["learner"], maml, num_tasks=4, shots=(5,), maml_steps=(1, 10))
    assert again == out or json.dumps(again) == json.dumps(out)  # fixed seed: the same tasks every time
    assert "black box better than MAML, 10 steps" in ch08_blackbox.ood_table(out, k_shot=5)
    assert len(ch08_blackbox.ood_findings(out, k_shot=5)) == len(out) - 1
    with pytest.raises(ValueError, match="num_tasks=1"):
        ch08_blackbox.blackbox_ood(tiny["learner"], maml, num_tasks=1)
    with pytest.raises(ValueError, match="reference='nowhere'"):
        ch08_blackbox.ood_findings(out, k_shot=5, reference="nowhere")


def test_committed_ood_file_has_provenance_and_parameter_counts_of_the_models() -> None:
    saved = result_files.load_result(ch08_blackbox.BLACKBOX_OOD)
    assert saved is not None, "results/ch08_blackbox_ood.json is missing: mlcourse blackbox-ood --threads 1"
    assert saved["device_name"] and saved["date"] and saved["torch"] and saved["wall_time_s"] > 0
    assert saved["command"] == ch08_blackbox.OOD_COMMAND and not saved["fast_mode"]
    models = saved["models"]
    settings = result_files.load_result(ch08_blackbox.BLACKBOX_VS_MAML)["settings"]
    width, layers, heads = (int(v) for v in re.findall(r"=(\d+)", settings["model"]))
    assert models["black box"]["parameters"] == ch08_blackbox.parameter_count(InContextRegressor(width, layers, heads))
    assert models["MAML"]["parameters"] == ch08_blackbox.parameter_count(SinusoidMLP())
    assert models["black box"]["parameters"] == settings["parameters"]  # the model ch08_blackbox_vs_maml.json tested
    assert all(v == 0.0 for v in models["black box"]["max_abs_difference_from_committed_test"].values())
    assert list(saved["families"]) == list(ch08_blackbox.ood_families())


def test_chapter_08_prints_and_plots_the_ood_measurement_from_the_file() -> None:
    cells = _chapter_08()
    code = [c["source"] for c in cells if c["cell_type"] == "code"]
    reads = [s for s in code if "ch08.load_result(ch08.BLACKBOX_OOD)" in s]
    assert reads and all(
        f in reads[0]
        for f in (
            "ch08.ood_figure(ood[",
            "ch08.ood_table(ood[",
            "ch08.ood_findings(ood[",
            "ch08.blackbox_ood(",
        )
    )
    assert any("ch08.parameter_count(" in s for s in code)  # parameters counted from the models
    # no figure of the file is typed into the chapter's text
    saved = result_files.load_result(ch08_blackbox.BLACKBOX_OOD)
    text = "\n".join(c["source"] for c in cells if c["cell_type"] == "markdown")
    figures = {
        f"{v['median']:.3f}"
        for fam in saved["families"].values()
        for k in ("K=5", "K=10")
        for v in (fam[k][m] for m in MODELS)
    }
    figures |= {f"{m['parameters']:,}" for m in saved["models"].values()}
    assert not [f for f in figures if f in text]


def test_ood_figure_draws_one_bar_per_model_and_family() -> None:
    import matplotlib

    matplotlib.use("Agg")
    saved = result_files.load_result(ch08_blackbox.BLACKBOX_OOD)
    fig = ch08_blackbox.ood_figure(saved["families"], shots=(10,))
    bars = [p for p in fig.axes[0].patches]
    assert len(bars) == len(saved["families"]) * len(MODELS)
    heights = sorted(b.get_height() for b in bars)
    medians = sorted(fam["K=10"][m]["median"] for fam in saved["families"].values() for m in MODELS)
    assert heights == pytest.approx(medians)
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_the_command_line_has_the_ood_subcommand(capsys) -> None:
    from mlcourse.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["blackbox-ood", "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0 and "mlcourse blackbox-ood" in out and "--tasks" in out
