"""mnist_lab: Hydra-configured CNN experiments on MNIST.

The folders show the architecture (docs/architecture.md says more):
``config/`` (composed config → typed settings), ``data/``, ``models/``, ``training/``
(the run, the loop, trackers), ``record/`` (the run folder), ``sweeps/``, ``recognise/``
(people's own images) and ``app/``; the commands ``predict``, ``evaluate``, ``compare``
and ``app`` are thin modules run with ``python -m mnist_lab.<command>``.

Importing the package imports nothing heavy.
"""

__version__ = "0.1.0"
