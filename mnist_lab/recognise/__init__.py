"""Recognising people's own digit images: reading files (:mod:`.images`), preparing them
like MNIST (:mod:`.prepare`) and classifying them with a run's model (:mod:`.predict`)."""
