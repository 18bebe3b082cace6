"""Time to 99 % test accuracy: experiment=fast, the seed protocol and pytorch/examples' MNIST.

    MNIST_LAB_DATA=../shared/mnist python benchmarks/time_to_accuracy.py
        [--recipes fast,seed,examples] [--target 99.0] [--eval-every 100] [--threads 2]
        [--seed-epochs 20] [--examples-epochs 3] [--runs-dir DIR]

The recipes, one after another, each in its own child process (this script with
``--child RECIPE``):

- ``fast``: ``experiment=fast`` (mnist_lab, seed 0), to its own end;
- ``seed``: ``experiment=seed``, the seed protocol (seed 0), capped at its first
  ``--seed-epochs`` epochs (its rate is constant, so they are the protocol's own);
- ``examples``: pytorch/examples' mnist/main.py as a plain loop: torchvision's
  ``datasets.MNIST`` (``download=False``) and a ``DataLoader`` (batch 64, shuffled),
  inputs normalised with (0.1307, 0.3081), conv 1->32 and 32->64 (3x3), 2x2 max-pool,
  dropout 0.25, fc 9216->128, dropout 0.5, fc 10, Adadelta lr 1.0, StepLR gamma 0.7 per
  epoch, its seed 1; capped at ``--examples-epochs`` epochs (their rates are its own).

What is measured: the wall clock (seconds) from just before the child process is
started (Python's start, imports, reading the data included) to the moment this
script reads the child's report of the first evaluation at which the accuracy on the
test split, the last 5,000 MNIST test images, is at least ``--target`` percent; or
"not reached", with the best accuracy and the time of the recipe's last evaluation.
Every recipe evaluates the test split after every ``--eval-every`` training steps
and after its last step, and that time counts (it is what a user who watches the
accuracy pays); the table gives it apart ("test evaluations"), as measured in the
child. mnist_lab's recipes run with ``trainer.eval_every`` set to the same number,
so they also evaluate their validation split (the first 5,000 test images) there,
as their record asks; that counts too. "start-up" is the time until the first
training step. A child that reaches the target stops training there. Every recipe
uses ``--threads`` CPU threads (mnist_lab: ``trainer.num_threads``; the loop:
``torch.set_num_threads``; ``OMP_NUM_THREADS`` for both); mnist_lab's runs log to
nothing but their run folder (``logger=none``). Ratios are to ``experiment=fast``
of the same invocation. Timings share the CPU with everything else on the machine:
the load average (1 minute) is printed at the start and end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RECIPES = {"fast": "experiment=fast", "seed": "the seed protocol (experiment=seed)",
           "examples": "pytorch/examples' mnist, plain loop"}
TAG = "@time_to_accuracy "  # the prefix of a child's report lines on its stdout
TEST_FROM = 5000  # the test split: MNIST test images 5,000..9,999 (mnist_lab's data.val_size)


# -- the child's side: one recipe, reporting on stdout ------------------------------------

def report(event: str, **values: float) -> None:
    """One report line to the parent: ``event`` (start, eval) and its values."""
    print(TAG + json.dumps({"event": event, **values}), flush=True)


def lab_child(recipe: str, args: argparse.Namespace) -> None:
    """Train an mnist_lab preset in this process; report its test accuracy at each evaluation.

    The overrides are those of ``python run.py experiment=<recipe> ...``; the run's folder
    is ``<runs dir>/<recipe>``.
    """
    # Hydra finds mnist_lab's sweepers (conf/config.yaml's hydra/sweeper: grid) by listing
    # the hydra_plugins folders on sys.path; an editable install's import hook is not one
    sys.path.insert(0, str(REPO))
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from mnist_lab.config.job import JobInfo
    from mnist_lab.config.settings import to_settings
    from mnist_lab.training.run import run_experiment

    overrides = [f"experiment={recipe}", f"trainer.eval_every={args.eval_every}",
                 f"trainer.num_threads={args.threads}", "logger=none",
                 "trainer.progress=false", "data.download=false"]
    if recipe == "seed":
        overrides.append(f"trainer.epochs={args.seed_epochs}")
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    job = JobInfo(run_dir=Path(args.runs_dir) / recipe, overrides=overrides,
                  config=OmegaConf.to_container(cfg, resolve=True))
    probe = TestAccuracy(args.target / 100)
    with probe.watching():
        run_experiment(to_settings(cfg), job, extra_trackers=[probe], stop_rules=[probe])


class TestAccuracy:
    """A tracker and stop rule for an mnist_lab run: at each evaluation, the accuracy of
    the model on the run's own test split, reported; training stops once it reaches
    ``target`` (a fraction).

    It has the methods of ``mnist_lab.training.tracking.base.Tracker`` and of
    ``mnist_lab.training.loop.StopRule`` without importing them, so that this script
    imports mnist_lab in mnist_lab's children only.
    """

    required = True  # a failure here fails the run, rather than being switched off

    def __init__(self, target: float) -> None:
        self.target, self.data, self.eval_s, self.reached = target, None, 0.0, False

    @contextlib.contextmanager
    def watching(self):
        """Keep the data the run loads (its splits and input normalisation), so the test
        split is evaluated from memory, as the run itself does, not read a second time."""
        import mnist_lab.training.run as lab_run

        set_up = lab_run.set_up

        def set_up_and_keep(*args, **kwargs):
            run = set_up(*args, **kwargs)
            self.data = run.data
            return run

        lab_run.set_up = set_up_and_keep
        try:
            yield self
        finally:
            lab_run.set_up = set_up

    # the tracker's events (mnist_lab.training.tracking.base.Tracker)
    def log_start(self, summary, probe, rows, step) -> None:
        report("start")

    def log_evaluation(self, row, images_per_s, model) -> None:
        from mnist_lab.training.evaluation import evaluate

        began = time.perf_counter()
        accuracy = 1 - evaluate(model, self.data.test, self.data.norm).error
        self.eval_s += time.perf_counter() - began
        self.reached = accuracy >= self.target
        report("eval", step=row["step"], epoch=row["epoch"], accuracy=accuracy,
               eval_s=self.eval_s)

    def log_end(self, end) -> None:
        pass

    def log_failure(self, summary) -> None:
        pass

    def close(self, exit_code) -> None:
        pass

    # the stop rule (mnist_lab.training.loop.StopRule)
    def check(self, rows):
        from mnist_lab.record.folder import Status
        from mnist_lab.training.loop import Stop

        return Stop(Status.COMPLETED, f"test accuracy reached {100 * self.target:g} %") \
            if self.reached else None


def examples_child(args: argparse.Namespace) -> None:
    """pytorch/examples' mnist/main.py (CPU) as a plain loop; report the test accuracy
    after every ``--eval-every`` steps and after the last one; stop at the target."""
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    torch.set_num_threads(args.threads)
    torch.manual_seed(1)  # main.py's default --seed
    transform = transforms.Compose([transforms.ToTensor(),
                                    transforms.Normalize((0.1307,), (0.3081,))])
    train = datasets.MNIST(args.data, train=True, download=False, transform=transform)
    test = datasets.MNIST(args.data, train=False, download=False, transform=transform)
    train_loader = DataLoader(train, batch_size=64, shuffle=True)
    test_loader = DataLoader(Subset(test, range(TEST_FROM, len(test))), batch_size=1000)
    model = examples_net()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    last, step, eval_s = args.examples_epochs * len(train_loader), 0, 0.0
    report("start")
    for _ in range(args.examples_epochs):
        model.train()
        for images, labels in train_loader:
            optimizer.zero_grad()
            F.nll_loss(model(images), labels).backward()
            optimizer.step()
            step += 1
            if step % args.eval_every == 0 or step == last:
                began = time.perf_counter()
                accuracy = examples_accuracy(model, test_loader)
                eval_s += time.perf_counter() - began
                report("eval", step=step, epoch=round(step / len(train_loader), 4),
                       accuracy=accuracy, eval_s=eval_s)
                if accuracy >= args.target / 100:
                    return
        scheduler.step()


def examples_accuracy(model, loader) -> float:
    """Fraction of ``loader``'s images that ``model`` classifies right (eval mode, no
    gradients; the model is left in training mode)."""
    import torch

    model.eval()
    correct, total = 0, 0
    with torch.no_grad():
        for images, labels in loader:
            correct += (model(images).argmax(dim=1) == labels).sum().item()
            total += len(labels)
    model.train()
    return correct / total


def examples_net():
    """A fresh pytorch/examples ``Net`` (mnist/main.py); the class is defined here, so that
    torch is imported in the children only."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Net(nn.Module):
        """conv 1->32, conv 32->64 (3x3, ReLU), 2x2 max-pool, dropout 0.25, fc 9216->128
        (ReLU), dropout 0.5, fc 10, log-softmax; (N, 1, 28, 28) -> (N, 10)."""

        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(1, 32, 3, 1), nn.Conv2d(32, 64, 3, 1)
            self.dropout1, self.dropout2 = nn.Dropout(0.25), nn.Dropout(0.5)
            self.fc1, self.fc2 = nn.Linear(9216, 128), nn.Linear(128, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
            x = self.dropout2(F.relu(self.fc1(torch.flatten(self.dropout1(x), 1))))
            return F.log_softmax(self.fc2(x), dim=1)

    return Net()


# -- the parent's side: start each child, time its reports, print the table ---------------

@dataclass
class Timing:
    """What one recipe's child reported, timed here (seconds from before its start)."""

    recipe: str
    start_s: float | None = None  # the first training step is about to run
    reached: dict | None = None   # the first evaluation at the target (with "at_s")
    best: dict | None = None      # the evaluation with the highest accuracy
    last: dict | None = None      # the last evaluation (with "at_s")
    evaluations: int = 0
    exit_s: float | None = None   # the child ended (its test and record written)
    log: Path | None = None

    def add(self, event: dict, at_s: float, target: float) -> None:
        """Take one report, read ``at_s`` seconds after the child was started."""
        if event["event"] == "start":
            self.start_s = at_s
            return
        event = {**event, "at_s": at_s}
        self.evaluations += 1
        self.last = event
        if self.best is None or event["accuracy"] > self.best["accuracy"]:
            self.best = event
        if self.reached is None and event["accuracy"] >= target:
            self.reached = event


def time_recipe(recipe: str, args: argparse.Namespace) -> Timing:
    """Run ``recipe`` in a child process and time its reports.

    Raises:
        SystemExit: the child failed (one line naming its log).
    """
    command = [sys.executable, str(Path(__file__).resolve()), "--child", recipe,
               *child_flags(args)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    timing = Timing(recipe, log=Path(args.runs_dir) / f"{recipe}.log")
    with open(timing.log, "w") as log:
        began = time.perf_counter()
        child = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                 stderr=log, text=True)
        for line in child.stdout:
            at_s = time.perf_counter() - began
            if line.startswith(TAG):
                timing.add(json.loads(line[len(TAG):]), at_s, args.target / 100)
        code = child.wait()
        timing.exit_s = time.perf_counter() - began
    if code != 0 or timing.last is None:
        tail = timing.log.read_text().strip().splitlines()[-1:] or ["(no output)"]
        raise SystemExit(f"Error: the recipe {recipe} failed (exit code {code}): {tail[0]}")
    return timing


def child_flags(args: argparse.Namespace) -> list[str]:
    """The settings a child needs, as command-line flags."""
    return ["--target", str(args.target), "--eval-every", str(args.eval_every),
            "--threads", str(args.threads), "--seed-epochs", str(args.seed_epochs),
            "--examples-epochs", str(args.examples_epochs), "--runs-dir", str(args.runs_dir),
            "--data", str(args.data)]


def table(timings: list[Timing], target: float) -> str:
    """The Markdown table of the results; ratios to the ``fast`` recipe's time."""
    fast = next((t for t in timings if t.recipe == "fast" and t.reached), None)
    lines = [f"| recipe | time to {target:g} % | ratio to `experiment=fast` | reached at | "
             "test accuracy then | start-up | test evaluations |",
             "|---|---|---|---|---|---|---|"]
    for t in timings:
        shown = t.reached or t.last
        ratio = "" if fast is None else \
            f"{'' if t.reached else '> '}{shown['at_s'] / fast.reached['at_s']:.2f}"
        when = f"{shown['at_s']:.1f} s" if t.reached else (
            f"not reached (best {100 * t.best['accuracy']:.2f} % at step {t.best['step']}; "
            f"{shown['at_s']:.1f} s at its end)")
        lines.append(
            f"| {RECIPES[t.recipe]} | {when} | {ratio} | step {shown['step']} (epoch "
            f"{shown['epoch']:.2f}) | {100 * shown['accuracy']:.2f} % | {t.start_s:.1f} s | "
            f"{shown['eval_s']:.1f} s ({t.evaluations}) |")
    return "\n".join(lines)


def machine() -> str:
    """One line: the CPU, the cores, Python's and torch's versions (measured here)."""
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) \
        if Path("/proc/cpuinfo").is_file() else platform.processor()
    return (f"{cpu}, {os.cpu_count()} logical cores; Python {platform.python_version()}, "
            f"torch {torch.__version__}")


# -- the command line ----------------------------------------------------------------------

def parse(argv: list[str]) -> argparse.Namespace:
    """The command line, checked (one line and exit code 2 for a bad value)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", default="fast,seed,examples",
                        help="comma-separated, of: " + ", ".join(RECIPES))
    parser.add_argument("--target", type=float, default=99.0,
                        help="test accuracy to reach, in percent (default 99.0)")
    parser.add_argument("--eval-every", type=int, default=100,
                        help="training steps between evaluations of the test split")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of every recipe")
    parser.add_argument("--seed-epochs", type=int, default=20,
                        help="cap on the seed protocol's epochs (its own: 20)")
    parser.add_argument("--examples-epochs", type=int, default=3,
                        help="cap on pytorch/examples' epochs (its own: 14)")
    parser.add_argument("--runs-dir", type=Path, default=None,
                        help="where mnist_lab's run folders and the children's logs go "
                             "(default: a temporary folder, removed at the end)")
    parser.add_argument("--data", type=Path,
                        default=Path(os.environ.get("MNIST_LAB_DATA", "data")),
                        help="folder holding MNIST/raw/ (default: $MNIST_LAB_DATA, else data)")
    parser.add_argument("--child", choices=list(RECIPES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    problem = next(filter(None, checks(args)), None)
    if problem:
        print(f"Error: {problem}", file=sys.stderr)
        sys.exit(2)
    return args


def checks(args: argparse.Namespace) -> list[str | None]:
    """A description of each bad value (None where the value is fine)."""
    unknown = [r for r in args.recipes if r not in RECIPES]
    raw = args.data / "MNIST" / "raw"
    return [
        f"--recipes {','.join(unknown) or '(none)'}: choose from {', '.join(RECIPES)}"
        if unknown or not args.recipes else None,
        f"--target {args.target:g} must be in (0, 100] (percent)"
        if not 0 < args.target <= 100 else None,
        f"--eval-every {args.eval_every} must be >= 1 (steps)" if args.eval_every < 1 else None,
        f"--threads {args.threads} must be >= 1" if args.threads < 1 else None,
        f"--seed-epochs {args.seed_epochs} must be >= 1" if args.seed_epochs < 1 else None,
        f"--examples-epochs {args.examples_epochs} must be >= 1"
        if args.examples_epochs < 1 else None,
        f"no MNIST files in '{raw.resolve()}': set MNIST_LAB_DATA or --data to the folder "
        "holding MNIST/raw/" if not (raw / "t10k-images-idx3-ubyte").is_file() else None,
    ]


def main(argv: list[str]) -> None:
    args = parse(argv)
    if args.child:
        examples_child(args) if args.child == "examples" else lab_child(args.child, args)
        return
    keep = args.runs_dir is not None
    args.runs_dir = (args.runs_dir or Path(tempfile.mkdtemp(prefix="time_to_accuracy_"))).resolve()
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    print(f"{machine()}; {args.threads} threads per recipe; load average "
          f"{os.getloadavg()[0]:.2f} at the start", flush=True)
    timings = []
    try:
        for recipe in args.recipes:
            timings.append(time_recipe(recipe, args))
            print(f"{recipe}: done in {timings[-1].exit_s:.1f} s", flush=True)
    finally:
        if not keep:
            shutil.rmtree(args.runs_dir, ignore_errors=True)
    print(f"load average {os.getloadavg()[0]:.2f} at the end\n")
    print(table(timings, args.target))


if __name__ == "__main__":
    main(sys.argv[1:])
