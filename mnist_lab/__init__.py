"""mnist_lab: Hydra-configured CNN experiments on MNIST.

The package is split by concern (see DESIGN.md and README.md):

- ``config``   dataclass schemas for Hydra, value checks, typed settings
- ``data``     MNIST as tensors on the training device, splits, batches
- ``augment``  batched, seeded data augmentation on the tensor path
- ``model``    the ConvNet family and its builder
- ``train``    the training loop; ``experiment`` wires a whole run together
- ``evaluate`` error rate, loss, confusion matrix; ``python -m mnist_lab.evaluate``
- ``record``   the run directory: the only module that knows its file names
- ``tracking`` the local record and the W&B tracker behind one interface
- ``plots``    matplotlib figures shared by the record, W&B and comparisons
- ``compare``  runs and sweeps side by side; ``python -m mnist_lab.compare``
- ``sweep``    Hydra sweepers and callbacks: summaries, resume, threads per job
- ``prepare``/``predict``  recognise digits in people's own images

Nothing here imports torch at package import time, so that configuration errors
are reported before the (slow) import of torch.
"""

__version__ = "0.1.0"
