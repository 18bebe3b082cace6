"""See inside the CNN in the browser: ``python -m mnist_lab.app RUN_DIR [RUN_DIR ...]``.

A local web page (Gradio; ``pip install -e '.[app]'``) where the user draws a digit,
uploads a photo or takes one with the webcam, and sees, as they draw: the prediction
with its probability (and the runner-up when the model is unsure), the probability of
every class, the 28x28 image the model saw with the preparation's warnings, the feature
maps of every conv layer and the first layer's filters, each on one stated scale, and a
slider over the run's conv-weight history (``weights_history.pt``) with each snapshot's
step and validation error. Several run folders, or a sweep folder, give a choice of
models and a table of every model's answer to the same input.

It serves on 127.0.0.1 (this machine only) unless ``--host`` says otherwise, and prints
its URL; ``--share`` (a public gradio.live link) is never on by default. A folder
without ``checkpoint.pt`` is refused before anything starts (exit code 2).
"""

from __future__ import annotations

import argparse
import os
import sys

from ..config.trust import Trust, add_trust_option
from ..errors import UserError


def port_number(text: str) -> int:
    """``--port``: an integer from 1 to 65535 (argparse reports anything else)."""
    port = int(text)
    if not 1 <= port <= 65535:
        raise ValueError(text)
    return port


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line; see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="python -m mnist_lab.app",
        description="A local web page to draw or upload digits and see inside the CNN.")
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="run folders holding checkpoint.pt, or sweep folders")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to serve on (default 127.0.0.1: this machine only; "
                             "0.0.0.0: every network interface)")
    parser.add_argument("--port", type=port_number, default=7860,
                        help="port, 1 to 65535 (default 7860)")
    parser.add_argument("--share", action="store_true",
                        help="also make a public gradio.live link (off by default)")
    parser.add_argument("--device", default="cpu",
                        help="cpu (default), auto (a GPU if there is one), cuda or cuda:N")
    add_trust_option(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Load the runs, then serve the page until Ctrl-C; 2 on a bad folder or option."""
    args = parse(argv)
    from .runs import load_runs
    from ..training.runtime import resolve_device

    try:
        runs = load_runs(args.run_dirs, resolve_device(args.device, key="--device"),
                         Trust.from_env(args.trust))
    except UserError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home
    try:
        from .ui import build
    except ImportError as error:
        print(f"Error: the app needs Gradio ({error}): pip install -c constraints.txt -e "
              "'.[app]'", file=sys.stderr)
        return 2
    page = build(runs)
    page.queue(default_concurrency_limit=2)
    # Gradio's own upload cap is above the app's (MAX_UPLOAD_MB), so a photo of 25 to 100 MB
    # reaches the app and gets its one-line message in the page; past 100 MB, Gradio's.
    try:
        page.launch(server_name=args.host, server_port=args.port, share=args.share,
                    prevent_thread_lock=True, quiet=True, show_error=True, max_file_size="100mb")
    except OSError as error:  # the port is taken, or the host is not this machine's
        print(f"Error: cannot serve on {args.host}:{args.port} ({' '.join(str(error).split())}). "
              "Another program may use that port: choose another with --port, e.g. "
              f"--port {args.port + 1}.", file=sys.stderr)
        return 2
    print(f"mnist_lab app: {page.local_url} ({len(runs)} model{'s' * (len(runs) > 1)}; "
          "Ctrl-C to stop)", flush=True)
    if page.share_url:
        print(f"Public link: {page.share_url}", flush=True)
    try:
        page.block_thread()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
