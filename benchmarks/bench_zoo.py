"""The model zoo's accuracy targets: each model trained 2 epochs with its preset.

    MNIST_LAB_DATA=../shared/mnist python benchmarks/bench_zoo.py [--models mlp resnet]
        [--epochs 2] [--threads 1] [--out DIR]

For each model, one after another, runs

    python run.py experiment=<preset> trainer.epochs=2 logger=none trainer.num_threads=1
        trainer.progress=false hydra.run.dir=<out>/<model>

as a user would, reads the run's ``summary.json`` and prints the test accuracy
(on the 5,000-image test split), the target of issue 9, the command's wall time,
the training speed (images/s, training steps only) and the model's parameter
count (the model built from the run's own ``.hydra/config.yaml``). Exits 1 when a
run fails or misses its target. Timings share the CPU with everything else on
the machine: run it on a quiet one.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# model → (preset, target test accuracy in %): issue 9's done-when.
ZOO = {
    "mlp": ("mlp", 97.0),
    "lenet5": ("lenet5", 98.5),
    "convnet_bn": ("recogniser", 98.8),
    "resnet": ("resnet", 99.0),
}


def parameter_count(run_dir: Path) -> int:
    """Parameters of the model the run's composed config describes (built, not trained)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    model = instantiate(cfg.model, in_shape=(1, 28, 28), num_classes=10)
    return sum(p.numel() for p in model.parameters())


def train(model: str, args: argparse.Namespace) -> dict:
    """One run of ``model``'s preset; its summary figures and the command's wall time."""
    preset, target = ZOO[model]
    run_dir = args.out / model
    command = [sys.executable, str(REPO / "run.py"), f"experiment={preset}",
               f"trainer.epochs={args.epochs}", "logger=none",
               f"trainer.num_threads={args.threads}", "trainer.progress=false",
               f"hydra.run.dir={run_dir}"]
    start = time.perf_counter()
    with open(args.out / f"{model}.log", "w") as log:
        rc = subprocess.run(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT).returncode
    result = {"model": model, "preset": preset, "target": target, "rc": rc,
              "command_s": time.perf_counter() - start}
    summary_path = run_dir / "summary.json"
    if rc == 0 and summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        result.update(accuracy=100 * summary["test/accuracy"], wall_s=summary["wall_s"],
                      images_per_s=summary["train/images_per_s"],
                      params=parameter_count(run_dir))
    return result


def row(r: dict) -> str:
    if "accuracy" not in r:
        return (f"| {r['model']} | {r['preset']} | failed (exit code {r['rc']}, see "
                f"{r['model']}.log) | {r['target']:.1f} % | MISSED | {r['command_s']:.0f} | | | |")
    ok = "ok" if r["accuracy"] >= r["target"] else "MISSED"
    return (f"| {r['model']} | {r['preset']} | {r['accuracy']:.2f} % | {r['target']:.1f} % | {ok} "
            f"| {r['command_s']:.0f} | {r['wall_s']:.0f} | {r['images_per_s']:,.0f} "
            f"| {r['params']:,} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(ZOO), default=list(ZOO))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="trainer.num_threads (default 1)")
    parser.add_argument("--out", type=Path, help="folder for the runs (default: a new temp dir)")
    args = parser.parse_args()
    args.out = (args.out or Path(tempfile.mkdtemp(prefix="bench_zoo_"))).resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"runs in {args.out}; {args.epochs} epochs, {args.threads} thread(s)", flush=True)
    print("| model | preset | test accuracy | target | | command s | train+test s | "
          "images/s | parameters |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
          flush=True)
    results = []
    for model in args.models:
        results.append(train(model, args))
        print(row(results[-1]), flush=True)
    missed = [r["model"] for r in results if r.get("accuracy", -1.0) < r["target"]]
    if missed:
        print(f"missed the target: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
