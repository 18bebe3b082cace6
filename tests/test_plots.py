"""Figures a researcher can read: labelled log error axes, honest image scales.

Real matplotlib figures, drawn with the Agg canvas; a real ConvNet and real
``wandb.Image`` objects for the W&B images.
"""

import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from mnist_lab import plots
from mnist_lab.config.job import JobInfo
from mnist_lab.models.convnet import ConvNet
from mnist_lab.training.snapshots import WeightsHistory
from mnist_lab.training.tracking.wandb_tracker import WandbTracker


def rows_from_errors(errors):
    """Metrics rows (errors as fractions) at steps 100, 200, ..."""
    return [{"step": 100 * (i + 1), "train/error": e, "val/error": e} for i, e in enumerate(errors)]


def visible_y_labels(fig):
    """The drawn y tick labels inside the axis limits: (texts, their bounding boxes)."""
    FigureCanvasAgg(fig).draw()
    ax = fig.axes[0]
    low, high = ax.get_ylim()
    ticks = [t for t in ax.yaxis.get_major_ticks()
             if low <= t.get_loc() <= high and t.label1.get_visible() and t.label1.get_text()]
    return [t.label1.get_text() for t in ticks], [t.label1.get_window_extent() for t in ticks]


ERROR_RANGES = {  # errors as fractions → labels that must be among the visible ones
    "0.8-100 %": ([1.0, 0.3, 0.05, 0.02, 0.008], {"1%", "2%", "3%", "5%", "10%", "20%", "100%"}),
    "1-3 %": ([0.03, 0.02, 0.015, 0.01], {"1%", "2%", "3%"}),
    "5-9 %": ([0.09, 0.07, 0.05], {"5%", "6%", "7%", "8%", "9%"}),
    "one point at 7 %": ([0.07], {"7%"}),
    "0.3-0.6 %": ([0.006, 0.004, 0.003], {"0.3%", "0.4%", "0.5%", "0.6%"}),
    "0.05-100 %": ([1.0, 0.1, 0.01, 0.0005], {"0.1%", "1%", "10%", "100%"}),
}
ERROR_FIGURES = {
    "error_curves": plots.error_curves,
    "val_error_overlay": lambda rows: plots.val_error_overlay({"a": rows, "b": rows[::-1]}),
}


@pytest.mark.parametrize("figure", ERROR_FIGURES)
@pytest.mark.parametrize("case", ERROR_RANGES)
def test_log_error_axis_labels_values_across_the_range(case, figure):
    errors, expected = ERROR_RANGES[case]
    labels, boxes = visible_y_labels(ERROR_FIGURES[figure](rows_from_errors(errors)))
    assert expected <= set(labels), labels
    assert len(labels) >= 3 and len(set(labels)) == len(labels), labels
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:]), labels


def test_shared_scale_keeps_a_weak_map_dark():
    pattern = torch.linspace(0, 1, 64).reshape(8, 8)
    maps = torch.stack([pattern, 0.015 * pattern])  # maxima 1.0 and 0.015
    grid, scale = plots.shared_scale_grid(maps, nrow=2)
    strong, weak = grid[1:9, 1:9], grid[1:9, 10:18]  # padding 1 around each 8x8 tile
    assert strong.max() == 255 and weak.max() < 10
    assert scale == "shared scale 0 to 1"


def test_signed_shared_scale_is_symmetric_about_zero():
    filters = torch.tensor([[[-0.2, 0.0], [0.1, 0.05]], [[0.0, 0.0], [0.0, 0.0]]])
    assert plots.shared_range(filters, signed=True) == pytest.approx((-0.2, 0.2))
    grid, scale = plots.shared_scale_grid(filters, nrow=2, signed=True)
    assert scale == "shared scale -0.2 to 0.2"
    assert grid[1, 1] == 0 and grid[1, 2] == 128 and grid[2, 1] == 191  # -0.2, 0, 0.1
    assert (grid[1:3, 4:6] == 128).all()  # an all-zero filter is mid-grey


def test_constant_tiles_do_not_crash():
    zeros = torch.zeros(3, 5, 5)
    grid, scale = plots.shared_scale_grid(zeros, nrow=3)
    assert scale == "shared scale 0 to 0" and grid[1:6, 1:6].max() == 0
    FigureCanvasAgg(plots.feature_maps([zeros, torch.full((2, 4, 4), 0.5)])).draw()


def colour_bars(fig):
    return [ax for ax in fig.axes if hasattr(ax, "_colorbar")]


def test_feature_map_figure_states_one_scale_per_layer():
    pattern = torch.linspace(0, 1, 64).reshape(8, 8)
    layers = [torch.stack([pattern, 0.015 * pattern]), 0.015 * pattern.expand(3, 8, 8)]
    fig = plots.feature_maps(layers)
    FigureCanvasAgg(fig).draw()
    panels = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title().splitlines()[1] for ax in panels] == [
        "shared scale 0 to 1", "shared scale 0 to 0.015"]
    assert [ax.images[0].get_clim() for ax in panels] == [(0.0, 1.0), pytest.approx((0, 0.015))]
    bars = colour_bars(fig)
    assert [bar.get_ylim() for bar in bars] == [(0.0, 1.0), pytest.approx((0, 0.015))]
    assert all(label.get_text() for bar in bars for label in bar.get_yticklabels())
    assert "one scale per layer" in fig.get_suptitle()


def test_filter_figure_states_a_symmetric_scale_per_snapshot():
    history = WeightsHistory(max_bytes=2**20)
    for step, scale in ((100, 0.1), (200, 0.4)):
        weight = scale * torch.linspace(-1, 1, 50).reshape(2, 1, 5, 5)
        history.offer(step, [(weight, torch.zeros(2))])
    fig = plots.filter_evolution(history)
    FigureCanvasAgg(fig).draw()
    panels = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in panels] == [
        "step 100\nshared scale -0.1 to 0.1", "step 200\nshared scale -0.4 to 0.4"]
    assert [bar.get_ylim() for bar in colour_bars(fig)] == [
        pytest.approx((-0.1, 0.1)), pytest.approx((-0.4, 0.4))]


def test_wandb_images_use_one_scale_per_layer_and_say_it(tmp_path, wandb_env):
    import wandb

    torch.manual_seed(0)
    model = ConvNet(depth=[4, 8], kernel_size=5, fc_width=16, dropout=0.5, in_shape=(1, 28, 28),
                    num_classes=10)
    with torch.no_grad():
        model.convs[1].weight.mul_(0.01)  # a weak second layer
    tracker = WandbTracker(JobInfo(run_dir=tmp_path), mode="offline")
    tracker.probe = torch.rand(4, 1, 28, 28)
    images = tracker._images(model)

    maps = [m[:, : plots.MAX_CHANNELS] for m in model.feature_maps(tracker.probe)]
    filters = model.convs[0].weight
    captions = {key: wandb.Image.all_captions([image])[0] for key, image in images.items()}
    assert captions == {
        "features/conv1": f"conv1: 4 maps of 4 images, shared scale 0 to {maps[0].max():.3g}",
        "features/conv2": f"conv2: 8 maps of 4 images, shared scale 0 to {maps[1].max():.3g}",
        "filters/conv1": f"conv1 filters, shared scale {-filters.abs().max():.3g} to "
                         f"{filters.abs().max():.3g}",
    }
    conv2 = np.asarray(images["features/conv2"].image)
    brightest = maps[1].flatten(0, 1).amax(dim=(1, 2)).argmax()  # (image, channel) → row, col
    row, col = divmod(int(brightest), 8)
    tile = conv2[1 + 15 * row: 15 * (row + 1), 1 + 15 * col: 15 * (col + 1)]  # 14x14 tiles
    assert tile.max() == 255


def test_grids_are_laid_out_as_torchvision_lays_them_out():
    """plots tiles images itself (torchvision takes seconds to import); same pixels."""
    from torchvision.utils import make_grid

    torch.manual_seed(0)
    for n, nrow in ((1, 8), (2, 3), (5, 2), (9, 4), (17, 8)):
        x = 2 * torch.randn(n, 1, 5, 7)
        ref = make_grid(x, nrow=nrow, padding=1, normalize=True, value_range=(-1, 1), pad_value=1)
        assert np.array_equal(plots.uint8_grid(x, (-1, 1), nrow=nrow),
                              (ref[0] * 255).round().to(torch.uint8).numpy()), (n, nrow)


def test_predict_and_the_app_import_neither_torchvision_nor_the_dataset_code():
    code = ("import sys, mnist_lab.predict, mnist_lab.app.command, mnist_lab.app.logic; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torchvision' "
            "or m in ('mnist_lab.data.mnist', 'mnist_lab.data.integrity', 'torch._dynamo')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_seeds_of_one_configuration_share_a_colour_and_differ_in_style():
    rows = [{"step": 100, "val/error": 0.1}, {"step": 200, "val/error": 0.05}]
    runs = {f"depth={d},seed={s}": rows for d in ("a", "b") for s in (0, 1)}
    groups = {label: label.split(",")[0] for label in runs}
    lines = plots.val_error_overlay(runs, groups=groups).axes[0].get_lines()
    colour = {line.get_label(): line.get_color() for line in lines}
    style = {line.get_label(): line.get_linestyle() for line in lines}
    assert colour["depth=a,seed=0"] == colour["depth=a,seed=1"] != colour["depth=b,seed=0"]
    assert style["depth=a,seed=0"] != style["depth=a,seed=1"]


def test_an_overlay_of_jobs_that_failed_before_any_row_warns_nothing():
    """A sweep whose jobs all failed early: an empty figure, no legend, no UserWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ax = plots.val_error_overlay({"job 0": [], "job 1": []}).axes[0]
    assert ax.get_legend() is None and not ax.get_lines()

