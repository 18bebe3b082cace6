"""The app: a local web page (Gradio) to draw or upload a digit and see inside the CNN.

``python -m mnist_lab.app RUN_DIR`` (:mod:`.command`). The runs it shows and their
conv-weight history (:mod:`.runs`), what it shows for an input without Gradio
(:mod:`.logic`), its figures (:mod:`.figures`) and the page (:mod:`.ui`).
"""
