"""Training: one run as a recipe (:mod:`.run`: set up, train, test, close; resume is a
branch of set-up, :mod:`.resume`), the loop (:mod:`.loop`), evaluation
(:mod:`.evaluation`), optimizers and schedules (:mod:`.optim`), the conv-weight history
(:mod:`.snapshots`), where a run computes (:mod:`.runtime`), provenance, and the
trackers that observe a run (:mod:`.tracking`)."""
