import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from mlcourse import plots


def test_accuracy_bars_and_close():
    fig = plots.accuracy_bars({"a": (0.5, 0.05), "b": (0.9, 0.02)}, chance=0.2, title="t")
    ax = fig.axes[0]
    assert len(ax.patches) == 2 and [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    plots.close(fig)
    with pytest.raises(ValueError):
        plots.accuracy_bars({})


def test_curves_fits_and_embedding_draw():
    x = torch.linspace(-5, 5, 50)
    figs = [
        plots.sinusoid_tasks(x, [torch.sin(x), 2 * torch.sin(x)], [(1.0, 0.0), (2.0, 0.0)]),
        plots.sinusoid_fit(x, torch.sin(x), x[:5], torch.sin(x[:5]), {"pred": torch.zeros(50)}),
        plots.adaptation_curves({"m": [3, 2, 1]}, errors={"m": [0.1, 0.1, 0.1]}, logy=True),
        plots.learning_curves({"m": ([1, 2, 3, 4, 5, 6], [5, 4, 3, 2, 1, 1])}, smooth=2),
        plots.task_embedding(torch.randn(10, 2), torch.rand(10), colour_label="A"),
        plots.task_images(torch.rand(10, 1, 8, 8), torch.arange(5).repeat_interleave(2),
                          query_x=torch.rand(5, 1, 8, 8), query_y=torch.arange(5)),
    ]
    assert len(figs[2].axes[0].lines) == 1
    assert len(figs[5].axes) == 5 * 4  # 5 classes x (2 support + 2 query columns)
    for f in figs:
        plots.close(f)
    with pytest.raises(ValueError):
        plots.task_embedding(torch.randn(10, 3), torch.rand(10))


def test_sharpness_histogram_labels_median_and_share_above_two():
    fig = plots.sharpness_histogram({"K=5": [0.5, 1.5, 2.5, 3.0], "K=10": torch.tensor([1.0, 1.2, 1.4])})
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["K=5: median 2.00, 50% > 2", "K=10: median 1.20, 0% > 2"]
    assert [line.get_xdata()[0] for line in fig.axes[0].lines] == [1.0, 2.0]
    plots.close(fig)
    with pytest.raises(ValueError):
        plots.sharpness_histogram({})
