"""``python -m mnist_lab.app RUN_DIR [RUN_DIR ...]``: see :mod:`mnist_lab.app.command`."""

import sys

from ..config.trust import forget_working_directory
from .command import main

forget_working_directory()
sys.exit(main())
