"""mnist_lab: Hydra-configured CNN experiments on MNIST.

The package is split by concern (see README.md, "Layout"):

- ``config``, ``validation``, ``errors``: schemas for Hydra, value checks, user errors
- ``data``, ``integrity``, ``augment``: MNIST as tensors on the device; checks of the
  raw files; batched, seeded augmentation
- ``model``, ``optim``: the ConvNet family; SGD and learning-rate schedules
- ``experiment``, ``run_parts``, ``train``, ``resume``: one run end to end; its parts
  and checkpoints; the loop; continuing a run
- ``runtime``, ``job``, ``provenance``: device, threads, determinism; the Hydra job;
  versions
- ``record``, ``runlock``, ``snapshots``: the run directory; its lock and heartbeat;
  the conv-weight history
- ``evaluate``, ``tracking``, ``wandb_tracker``, ``wandb_files``, ``plots``:
  evaluation, trackers, W&B's run files, figures
- ``compare``, ``sweep``: run tables and sweep summaries; sweep plumbing
- ``prepare``, ``predict``: recognising people's own images

Nothing here imports torch at package import time, so that configuration errors
are reported before the (slow) import of torch.
"""

__version__ = "0.1.0"
