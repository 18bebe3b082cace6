"""Data: the dataset as tensors on the training device, its integrity checks, the input
normalisation a model sees, and batched augmentation on the tensor path."""
