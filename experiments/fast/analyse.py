"""The tables and the plot of experiments/fast/README.md, from the run records.

    python experiments/fast/analyse.py study [--study DIR] [--load FILE]
    python experiments/fast/analyse.py seeds CHECK_DIR [CHECK_DIR ...]

``study``: every trial of the Optuna study (``experiments/fast/runs/study``) with its
searched values, ``val/best_error`` and ``test/error`` (percent), ``train/seconds`` and
the machine's load average during the trial (the mean of the 1-minute load average
sampled every 15 s into ``--load``, lines ``<unix time> <1 min> <5 min> <15 min>``);
writes ``study_trials.csv`` and ``pareto_front.png`` beside this script and prints the
Pareto front (the sweep's own ``pareto_front`` column) as Markdown.

``seeds``: for each 5-seed check (a sweep folder of ``seed=range(5)``), one row per seed
(test accuracy, validation error, training seconds, load average) and the mean and
sample standard deviation (n - 1) of the test accuracy, as Markdown; writes
``seed_checks.csv``.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEARCHED = ["model.depth", "model.kernel_size", "model.fc_width", "model.dropout",
            "model.batch_norm", "data.batch_size", "optimizer.lr", "optimizer.betas",
            "scheduler.warmup_fraction", "trainer.epochs"]


def config_value(config: dict, key: str):
    """The value of a dotted ``key`` in a run's composed config."""
    for part in key.split("."):
        config = config[part]
    return config


def load_average(samples: list[tuple[float, float]], summary: dict) -> float | None:
    """Mean 1-minute load average between the run's start and end (None: no sample)."""
    start, end = (datetime.fromisoformat(summary[k]).timestamp()
                  for k in ("started_at", "finished_at"))
    inside = [load for t, load in samples if start <= t <= end]
    return round(statistics.mean(inside), 2) if inside else None


def read_load(path: Path) -> list[tuple[float, float]]:
    """(unix time, 1-minute load average) samples; [] when the file is missing."""
    if not path.is_file():
        return []
    return [(float(t), float(one)) for t, one, *_ in
            (line.split() for line in path.read_text().splitlines() if line.strip())]


def run_row(run: Path, samples: list[tuple[float, float]]) -> dict:
    """One run's searched values and figures (error rates in percent)."""
    summary = json.loads((run / "summary.json").read_text())
    row = {"run": run.name, "status": summary["status"]}
    row.update({key: config_value(summary["config"], key) for key in SEARCHED})
    if summary["status"] == "completed":
        row.update({"val_error_%": round(100 * summary["val/best_error"], 2),
                    "test_error_%": round(100 * summary["test/error"], 2),
                    "test_accuracy_%": round(100 * summary["test/accuracy"], 2),
                    "train_s": summary["train/seconds"], "wall_s": summary["wall_s"],
                    "params": summary["model/params"],
                    "load_avg": load_average(samples, summary)})
    return row


def study(args: argparse.Namespace) -> None:
    samples = read_load(args.load)
    front = {r["run"] for r in csv.DictReader(open(args.study / "sweep_summary.csv"))
             if r.get("pareto_front") == "yes"}
    runs = sorted((p for p in args.study.iterdir() if (p / "summary.json").is_file()),
                  key=lambda p: int(p.name))
    rows = [{**run_row(p, samples), "pareto_front": p.name in front} for p in runs]
    write_csv(HERE / "study_trials.csv", rows)
    plot_front(rows, HERE / "pareto_front.png")
    shown = sorted((r for r in rows if r["pareto_front"]), key=lambda r: r["train_s"])
    print(markdown(shown, ["run", *SEARCHED, "val_error_%", "test_error_%", "train_s",
                           "load_avg"]))
    times = [r["load_avg"] for r in rows if r.get("load_avg") is not None]
    if times:
        print(f"\nload average during the trials: {min(times)} to {max(times)}")


def seeds(args: argparse.Namespace) -> None:
    samples = read_load(args.load)
    rows = []
    for check in args.checks:
        runs = [p for p in sorted(check.iterdir()) if (p / "summary.json").is_file()]
        for p in runs:
            summary = json.loads((p / "summary.json").read_text())
            rows.append({"check": check.name, "seed": summary["config"]["seed"],
                         **{k: v for k, v in run_row(p, samples).items()
                            if k in ("status", "test_accuracy_%", "val_error_%", "train_s",
                                     "wall_s", "load_avg")}})
    write_csv(HERE / "seed_checks.csv", rows)
    print(markdown(rows, ["check", "seed", "test_accuracy_%", "val_error_%", "train_s",
                          "load_avg"]))
    print()
    for check in args.checks:
        accuracy = [r["test_accuracy_%"] for r in rows if r["check"] == check.name]
        seconds = [r["train_s"] for r in rows if r["check"] == check.name]
        print(f"{check.name}: test accuracy {statistics.mean(accuracy):.2f} ± "
              f"{statistics.stdev(accuracy):.2f} % (mean ± sample std, n = {len(accuracy)}, "
              f"{min(accuracy):.2f} to {max(accuracy):.2f}); train/seconds median "
              f"{statistics.median(seconds):.1f}, min {min(seconds):.1f}")


def markdown(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def write_csv(path: Path, rows: list[dict]) -> None:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)


def plot_front(rows: list[dict], path: Path) -> None:
    """Validation error against training seconds, every completed trial; the front joined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if r["status"] == "completed"]
    front = sorted((r for r in done if r["pareto_front"]), key=lambda r: r["train_s"])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter([r["train_s"] for r in done], [r["val_error_%"] for r in done], s=18,
               color="0.6", label="trial")
    ax.plot([r["train_s"] for r in front], [r["val_error_%"] for r in front], "o-",
            color="C3", label="Pareto front")
    for r in front:
        ax.annotate(r["run"], (r["train_s"], r["val_error_%"]), textcoords="offset points",
                    xytext=(4, 4), fontsize=8)
    ax.set(xscale="log", yscale="log", xlabel="train/seconds (training steps only, 2 threads)",
           ylabel="validation error (%, first 5,000 test images)",
           title=f"fast_search: {len(done)} completed trials")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["study", "seeds"])
    parser.add_argument("checks", nargs="*", type=Path, help="seeds: the check sweep folders")
    parser.add_argument("--study", type=Path, default=HERE / "runs" / "study")
    parser.add_argument("--load", type=Path, default=HERE / "runs" / "loadavg.log")
    args = parser.parse_args(argv)
    missing = [p for p in ([args.study] if args.what == "study" else args.checks)
               if not p.is_dir()]
    if missing or (args.what == "seeds" and not args.checks):
        hint = (" (made by: python run.py -m +sweep=fast_search "
                f"hydra.sweep.dir={args.study})") if args.what == "study" else ""
        sys.exit(f"Error: no such folder: {missing[0]}{hint}" if missing else
                 "Error: seeds needs the check sweep folders")
    study(args) if args.what == "study" else seeds(args)


if __name__ == "__main__":
    main(sys.argv[1:])
