"""What only a GPU can show: device placement, the CUDA RNG state in checkpoints,
resume on the GPU, and ``trainer.deterministic`` giving bit-identical GPU runs.

Skipped without CUDA; ``benchmarks/device_check.sh`` runs them on a GPU machine.
"""

import pytest
import torch

from conftest import StopAt, run_training
from mnist_lab.record import RunRecord

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
GPU = ["trainer.max_steps=240", "trainer.eval_every=40", "trainer.checkpoint_every=80",
       "optimizer.lr=0.01", "trainer.progress=false", "logger=none", "trainer.device=auto",
       "trainer.deterministic=true"]


def rows(run_dir):
    return [{k: v for k, v in r.items() if k != "elapsed_s"}
            for r in RunRecord(run_dir).read_metrics()]


def weights(run_dir):
    return torch.load(run_dir / "checkpoint.pt", weights_only=True)["model_state"]


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
    assert rows(tmp_path) == rows(gpu_run)
    a, b = weights(tmp_path), weights(gpu_run)
    assert all(torch.equal(a[k], b[k]) for k in b)


def test_stopped_and_resumed_on_the_gpu_equals_straight_through(gpu_run, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run_training(tmp_path, GPU, extra_trackers=[StopAt(120)])
    run_training(tmp_path, ["trainer.resume=true", "trainer.progress=false"])
    assert rows(tmp_path) == rows(gpu_run)
    a, b = weights(tmp_path), weights(gpu_run)
    assert all(torch.equal(a[k], b[k]) for k in b)
