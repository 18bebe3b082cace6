"""Sweeps and comparison: what a sweep adds to Hydra's (resume, cores per job, failures:
:mod:`.plumbing`), its summaries and W&B group (:mod:`.summary`, :mod:`.callback`), and
reading and tabulating run records (:mod:`.runs`, :mod:`.report`), shared with
``python -m mnist_lab.compare``."""
