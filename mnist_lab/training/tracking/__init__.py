"""What observes a run: the trackers' interface (:mod:`.base`), the local record
(:mod:`.local`), Weights & Biases (:mod:`.wandb_tracker`) and a reader of W&B's
run files (:mod:`.wandb_files`)."""
