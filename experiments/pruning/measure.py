"""Does median pruning pay? The same Optuna study with and without it, over 3 sampler seeds.

    MNIST_LAB_DATA=../shared/mnist OMP_NUM_THREADS=1 python experiments/pruning/measure.py
    MNIST_LAB_DATA=../shared/mnist OMP_NUM_THREADS=1 python experiments/pruning/measure.py --model convnet

Each study: 24 trials of 2 epochs (batch 128: 938 steps, evaluated every 94 steps) of the
MLP (``model=mlp``) or of the seed protocol's ConvNet (``--model convnet``: depth [4,8]),
searching the learning rate (log scale, 1e-4 to 1), the momentum (0 to 0.99) and the
dropout (0 to 0.5); TPE (Optuna's defaults) with sampler seed 0, 1 or 2, one trial at a
time (n_jobs=1, the basic launcher, one thread), without a pruner and with
``hydra/sweeper/pruner=median`` (its defaults: 5 startup trials, no warm-up). The two arms
of a seed run one after the other. Writes ``runs/<model>_<arm>_seed<s>/`` (the sweeps,
git-ignored) and ``results_<model>.csv``, and prints the table of README.md. ``--trials
N`` and ``--seeds 0 1`` make a quicker check.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SPACE = ["optimizer.lr=tag(log, interval(0.0001, 1.0))",
         "optimizer.momentum=interval(0.0, 0.99)", "model.dropout=interval(0.0, 0.5)"]
FIXED = ["data.batch_size=128", "trainer.epochs=2", "trainer.eval_every=94",
         "trainer.num_threads=1", "trainer.progress=false", "logger=none"]
ARMS = {"none": "hydra/sweeper/pruner=none", "median": "hydra/sweeper/pruner=median"}


def run_study(model: str, arm: str, seed: int, trials: int) -> dict:
    """One study; its wall time (s) and its figures from the run records."""
    sweep_dir = HERE / "runs" / f"{model}_{arm}_seed{seed}"
    if sweep_dir.exists():
        raise SystemExit(f"{sweep_dir} exists: remove it to measure again")
    command = [sys.executable, str(REPO / "run.py"), "-m", "hydra/sweeper=mnist_optuna", ARMS[arm],
               "hydra.sweeper.max_failure_rate=1.0",
               *SPACE, f"hydra.sweeper.n_trials={trials}",
               f"hydra.sweeper.sampler.seed={seed}", f"hydra.sweep.dir={sweep_dir}",
               f"model={model}", *FIXED]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    wall_s = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{arm} seed {seed} failed:\n{done.stderr[-3000:]}")
    return {"model": model, "arm": arm, "seed": seed, "wall_s": round(wall_s, 1),
            **figures(sweep_dir, trials)}


def figures(sweep_dir: Path, trials: int) -> dict:
    """Steps trained (all trials), the status counts, and the best completed trial's errors."""
    summaries = [json.loads((sweep_dir / str(n) / "summary.json").read_text())
                 for n in range(trials)]
    steps = 0
    for n, s in enumerate(summaries):  # a diverged trial: up to its last evaluation
        metrics = (sweep_dir / str(n) / "metrics.csv").read_text().splitlines()
        steps += s.get("steps") or (s.get("stopped") or {}).get("step") or (
            int(float(metrics[-1].split(",")[0])) if len(metrics) > 1 else 0)
    done = [s for s in summaries if s["status"] == "completed"]
    best = min(done, key=lambda s: s["val/best_error"])
    count = {k: sum(s["status"] == k for s in summaries) for k in ("completed", "pruned")}
    return {"trials": trials, "completed": count["completed"], "pruned": count["pruned"],
            "other": trials - sum(count.values()), "steps": steps,
            "best_trial": summaries.index(best), "val_best_error": best["val/best_error"],
            "test_best_checkpoint_error": best["test/best_checkpoint_error"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--model", choices=["mlp", "convnet"], default="mlp")
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        for arm in ARMS:
            rows.append(run_study(args.model, arm, seed, args.trials))
            print(json.dumps(rows[-1]), flush=True)
    with open(HERE / f"results_{args.model}.csv", "w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print("| seed | pruner | completed | pruned | failed | steps | wall (s) | best trial "
          "| val/best_error | test/best_checkpoint_error |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['seed']} | {r['arm']} | {r['completed']} | {r['pruned']} | {r['other']} "
              f"| {r['steps']:,} | {r['wall_s']:.0f} | {r['best_trial']} "
              f"| {100 * r['val_best_error']:.2f} % | {100 * r['test_best_checkpoint_error']:.2f} % |")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
