"""The model zoo: one module per model, each holding the ``nn.Module`` and its config schema.

A model module defines:

- ``SCHEMA``: a dataclass with the model's ``_target_`` (its import path) and its
  constructor's own keyword arguments, registered in Hydra's ConfigStore as
  ``schema/model/<module name>`` so ``conf/model/<module name>.yaml`` is type-checked
  at composition;
- the model class, built as ``Class(in_shape=(C, H, W), num_classes=K, **kwargs)``
  (the trainer supplies only what comes from the data), whose ``forward`` maps
  float32 (N, C, H, W) inputs to float32 (N, K) log-probabilities;
- optionally ``validate(in_shape, num_classes, **kwargs)``, a classmethod raising
  :class:`~mnist_lab.errors.ConfigError` (run before any data is read), and
  ``feature_maps(x)`` / ``conv_weights()`` for the feature-map and filter images.

A model outside this package needs no schema: a YAML file with ``_target_`` and the
keyword arguments is enough (README, "Add your own model").
"""
