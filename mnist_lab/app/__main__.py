"""``python -m mnist_lab.app RUN_DIR [RUN_DIR ...]``: see :mod:`mnist_lab.app.command`."""

import sys

from .command import main

sys.exit(main())
