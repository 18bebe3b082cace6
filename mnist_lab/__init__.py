"""mnist_lab: Hydra-configured CNN experiments on MNIST.

The package is split by concern (see README.md, "Layout"):

- ``config``, ``validation``, ``errors``: schemas for Hydra, value checks, user errors
- ``data``, ``augment``: MNIST as tensors on the device; batched, seeded augmentation
- ``model``, ``optim``: the ConvNet family; SGD and learning-rate schedules
- ``experiment``, ``train``, ``resume``: one run end to end; the loop; continuing a run
- ``runtime``, ``job``, ``provenance``: device and threads; the Hydra job; versions
- ``record``, ``snapshots``: the run directory (the only module that knows its files)
- ``evaluate``, ``tracking``, ``wandb_tracker``, ``plots``: evaluation, trackers, figures
- ``compare``, ``sweep``: run tables and sweep summaries; sweep plumbing
- ``prepare``, ``predict``: recognising people's own images

Nothing here imports torch at package import time, so that configuration errors
are reported before the (slow) import of torch.
"""

__version__ = "0.1.0"
