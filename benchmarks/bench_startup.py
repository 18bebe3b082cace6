"""Start-up time and throughput of ``predict`` and of the app, against the imports they need.

    python benchmarks/bench_startup.py RUN_DIR [--repeat 5] [--images 200] [--no-app]

Each start-up figure is the median wall time and CPU time of ``--repeat`` fresh processes,
with the number of modules imported:

- ``import torch`` and ``python -m mnist_lab.predict RUN_DIR docs/examples/four.png`` (the
  whole command: start, load the model, read, prepare and recognise one image, print);
- ``import torch, gradio`` and ``python -m mnist_lab.app RUN_DIR``: from the start of the
  process to its ``mnist_lab app: URL`` line (the page is then served).

Throughput: ``mnist_lab.recognise.predict.predict`` on ``--images`` 640x480 JPEG photos
(see bench_prepare.py) in this process, 2 threads; and the app's ``/upload`` request on
one such photo through ``gradio_client``, one request at a time (median latency).
Run it on a quiet machine: every figure shares the CPU with whatever else runs.
"""

from __future__ import annotations

import argparse
import os
import resource
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_prepare import make_photos  # noqa: E402


def measure(command: list[str], repeat: int) -> tuple[float, float, int]:
    """``command`` run ``repeat`` times: median wall s, median CPU s (user + system), and
    the modules it imports (``python -X importtime``: the work a cache cannot hide)."""
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    traced = subprocess.run([command[0], "-X", "importtime", *command[1:]], cwd=REPO,
                            capture_output=True, text=True, check=True)
    return (statistics.median(walls), statistics.median(cpus),
            traced.stderr.count("import time:") - 1)  # less the header line


def show(name: str, figures: tuple[float, float, int], base: tuple | None = None) -> None:
    """One line: wall, CPU and modules, and the difference from ``base``."""
    wall, cpu, modules = figures
    extra = "" if base is None else (f" (+{wall - base[0]:.2f} s wall, +{cpu - base[1]:.2f} s "
                                     f"CPU, +{modules - base[2]} modules)")
    print(f"{name}: {wall:.2f} s wall, {cpu:.2f} s CPU, {modules} modules{extra}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a running process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_app(run_dir: str) -> tuple[subprocess.Popen, str, float, float]:
    """Start the app on a free port: (process, URL, wall s and CPU s until its URL line)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    app = subprocess.Popen([sys.executable, "-m", "mnist_lab.app", run_dir, "--port", str(port)],
                           cwd=REPO, text=True, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL)
    line = ""
    while "mnist_lab app:" not in line:
        if app.poll() is not None or time.perf_counter() - start > 300:
            raise RuntimeError(f"the app did not start (exit code {app.poll()})")
        if select.select([app.stdout], [], [], 1.0)[0]:
            line = app.stdout.readline()
    return app, line.split()[2], time.perf_counter() - start, cpu_seconds(app.pid)


def app_figures(run_dir: str, repeat: int, photo: Path) -> None:
    from gradio_client import Client, handle_file

    base = measure([sys.executable, "-c", "import torch, gradio"], repeat)
    show("import torch, gradio", base)
    ready, cpu, latencies = [], [], []
    for i in range(repeat):
        app, url, seconds, cpu_s = start_app(run_dir)
        ready.append(seconds)
        cpu.append(cpu_s)
        try:
            if i == 0:
                client = Client(url, verbose=False)
                client.predict(handle_file(str(photo)), run_dir, 0, api_name="/upload")  # warm
                for _ in range(10):
                    start = time.perf_counter()
                    client.predict(handle_file(str(photo)), run_dir, 0, api_name="/upload")
                    latencies.append(time.perf_counter() - start)
        finally:
            app.terminate()
            app.wait(timeout=30)
    print(f"app until it printed its URL: {statistics.median(ready):.2f} s wall, "
          f"{statistics.median(cpu):.2f} s CPU (+{statistics.median(ready) - base[0]:.2f} s wall, "
          f"+{statistics.median(cpu) - base[1]:.2f} s CPU)")
    latency = statistics.median(latencies)
    print(f"app /upload request (read, prepare, recognise, feature maps, filters, every "
          f"model's answer): {1e3 * latency:.0f} ms median, {1 / latency:.1f} requests/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--no-app", action="store_true", help="skip the app's figures")
    args = parser.parse_args()
    torch_only = measure([sys.executable, "-c", "import torch"], args.repeat)
    show("import torch", torch_only)
    show("predict on one image, whole command", measure(
        [sys.executable, "-m", "mnist_lab.predict", args.run_dir, "docs/examples/four.png"],
        args.repeat), torch_only)
    import torch

    from mnist_lab.models.build import load_model
    from mnist_lab.recognise.predict import predict

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        paths = [str(p) for p in make_photos(Path(tmp), args.images)]
        loaded = load_model(args.run_dir)
        predict(loaded, paths[:20], workers=2)  # warm-up
        start = time.perf_counter()
        predict(loaded, paths, workers=2)
        took = time.perf_counter() - start
        print(f"predict, {len(paths)} 640x480 JPEG photos, 2 threads: "
              f"{len(paths) / took:.0f} images/s")
        if not args.no_app:
            run = Path(args.run_dir).resolve()  # the app's key for it: relative below the repo
            key = str(run.relative_to(REPO)) if run.is_relative_to(REPO) else str(run)
            app_figures(key, args.repeat, Path(paths[0]))


if __name__ == "__main__":
    main()
