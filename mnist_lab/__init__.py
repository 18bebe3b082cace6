"""mnist_lab: Hydra-configured CNN experiments on MNIST.

The training core is flat and reads top to bottom (README.md, "Layout"):

- ``config``, ``settings``, ``validation``, ``paths``, ``errors``: schemas for Hydra;
  composed config → checked dataclasses; value checks; path resolvers; user errors
- ``models/``: the model zoo, one module per model; ``build``: models built with
  Hydra's ``instantiate``, from config or from a saved file; ``checkpoint``: the
  saved-model format
- ``data``, ``integrity``, ``inputs``, ``augment``: MNIST as tensors on the device;
  checks of the raw files; input normalisation; batched, seeded augmentation
- ``optim``: optimizers and learning-rate schedules
- ``experiment``, ``run_parts``, ``train``, ``resume``, ``evaluate``: one run end to
  end; its parts and checkpoints; the loop; continuing a run; error rates
- ``record``, ``metrics_csv``, ``runlock``, ``atomic``, ``snapshots``: the run
  directory; the metrics file's format; its lock and heartbeat; atomic writes; the
  conv-weight history
- ``runtime``, ``job``, ``cluster``, ``provenance``, ``plots``, ``error_ticks``:
  device, threads, determinism and stop signals; the Hydra job; SLURM (job facts,
  requeue, data visibility); versions; figures; the ticks of their error axes
- ``predict``, ``evaluate``, ``compare``, ``app``: the ``python -m mnist_lab.<command>``
  commands

and three products in subpackages: ``tracking/`` (the trackers' interface, the local
record, W&B), ``sweeps/`` (sweep plumbing, summaries, run tables) and
``recognise/`` (reading and preparing people's images, the predict engine, and the
app's runs, logic, figures and page in ``app_*``).

Importing the package imports nothing heavy; :mod:`mnist_lab.config` imports the
model zoo (and so torch) to register its schemas.
"""

__version__ = "0.1.0"
