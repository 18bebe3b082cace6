"""mnist_lab's Hydra sweepers: Hydra's own, plus resume, summaries and cores per job.

Hydra only instantiates plugins defined in the ``hydra_plugins`` namespace, so
the two thin subclasses live here; the logic is in :mod:`mnist_lab.sweeps`.

- ``hydra/sweeper=grid`` (mnist_lab's default, set in ``conf/config.yaml``): every
  combination of the swept values, skipping jobs already completed in the same
  sweep directory, ending with an error naming every failed job.
  ``hydra/sweeper=basic`` is Hydra's own.
- ``hydra/sweeper=mnist_optuna`` (extra ``[optuna]``): the Optuna sweeper whose
  study can be continued: new trials get new job directories.
"""
