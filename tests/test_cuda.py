"""What only a GPU can show: device placement, the CUDA RNG state in checkpoints,
resume on the GPU, and ``trainer.deterministic`` giving bit-identical GPU runs.

Skipped without CUDA; ``benchmarks/device_check.sh`` runs them on a GPU machine.
"""

import pytest
import torch

from conftest import StopAt, final_weights, metrics_without_time, run_training
from mnist_lab.record.folder import RunRecord

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
GPU = ["trainer.max_steps=240", "trainer.eval_every=40", "trainer.checkpoint_every=80",
       "optimizer.lr=0.01", "trainer.progress=false", "logger=none", "trainer.device=auto",
       "trainer.deterministic=true"]


@pytest.fixture(scope="module")
def gpu_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("gpu_run")
    run_training(run_dir, GPU)
    return run_dir


def test_auto_trains_on_the_gpu_and_records_its_name(gpu_run):
    summary = RunRecord(gpu_run).read_summary()
    assert summary["device"].startswith("cuda")
    assert summary["device_name"] == torch.cuda.get_device_name(0)
    checkpoint = torch.load(gpu_run / "checkpoint.pt", weights_only=True)  # CPU-loadable
    assert all(t.device.type == "cpu" for t in checkpoint["model_state"].values())


def test_checkpoints_keep_the_cuda_rng_state(gpu_run):
    rng = torch.load(gpu_run / "checkpoint.pt", weights_only=True)["rng"]["cuda"]
    assert len(rng) == torch.cuda.device_count() and rng[0].dtype == torch.uint8


def test_deterministic_gpu_runs_are_bit_identical(gpu_run, tmp_path):
    run_training(tmp_path, GPU)
    assert metrics_without_time(tmp_path) == metrics_without_time(gpu_run)
    a, b = final_weights(tmp_path), final_weights(gpu_run)
    assert all(torch.equal(a[k], b[k]) for k in b)


def test_stopped_and_resumed_on_the_gpu_equals_straight_through(gpu_run, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run_training(tmp_path, GPU, extra_trackers=[StopAt(120)])
    run_training(tmp_path, ["trainer.resume=true", "trainer.progress=false"])
    assert metrics_without_time(tmp_path) == metrics_without_time(gpu_run)
    a, b = final_weights(tmp_path), final_weights(gpu_run)
    assert all(torch.equal(a[k], b[k]) for k in b)
