"""mnist_lab's Hydra sweepers, on Hydra's public ``Sweeper`` interface: resume,
summaries, cores (and GPUs) per job.

Hydra only instantiates plugins defined in the ``hydra_plugins`` namespace, so
the two thin sweepers live here; the logic is in :mod:`mnist_lab.sweeps`.

- ``hydra/sweeper=grid`` (mnist_lab's default, set in ``conf/config.yaml``): every
  combination of the swept values, skipping jobs already completed in the same
  sweep directory, ending with an error naming every failed job.
  ``hydra/sweeper=basic`` is Hydra's own.
- ``hydra/sweeper=mnist_optuna`` (``+sweep=optuna``, extra ``[optuna]``): an Optuna
  study by ask and tell, continuable in the same sweep directory, with samplers and
  pruners as config groups; trials report to the study and are pruned through its
  storage, wherever they run (docs/optuna.md).
"""
