"""The app's page (Gradio Blocks): inputs, what the model saw and answered, and its insides.

Events, each also an API endpoint for ``gradio_client`` (``Client(url).predict(input,
run, position, api_name="/upload")``, the run given by its folder as the app printed it,
the position an index into its history, the last being the final weights): ``/draw``
(the canvas), ``/upload`` (a file), ``/camera`` (a webcam photo), ``/pick`` (another
model) and ``/history`` (the slider). The first four return, in order: the verdict, the
class probabilities, the 28x28 image the model saw, the preparation's warnings, every
model's answer, the feature maps and their scales, the first layer's filters and the
history's step and validation error; ``/pick`` adds the slider first, ``/history``
returns the last four.
"""

from __future__ import annotations

import gradio as gr

from . import logic
from .runs import AppRun

TITLE = "See inside the CNN: mnist_lab's digit recogniser"
INTRO = ("Draw a digit, upload a photo or take one with the webcam. The model sees the "
         "28x28 image below, prepared like MNIST; the feature maps show what each conv "
         "layer made of it, and the slider replays training.")


def _outputs(run: AppRun, prepared, position: int, runs: list[AppRun], chosen: int) -> tuple:
    a = logic.answer(runs, chosen, prepared)
    i = logic.inside(run, prepared, position)
    return (a.verdict, a.probabilities, a.seen, a.notes, a.comparison, i.maps, i.maps_note,
            i.filters, i.history_note)


def _slider(run: AppRun) -> gr.Slider:
    last = max(len(run.history) - 1, 0)
    return gr.Slider(minimum=0, maximum=max(last, 1), value=last, step=1,
                     interactive=len(run.history) > 1, elem_id="history",
                     label=f"Training history: snapshot 0 to {last} (the last: final weights)")


def _inputs(runs: list[AppRun]) -> tuple:
    """The model menu and the three inputs (canvas, upload, webcam), in tabs."""
    model = gr.Dropdown([(run.label, run.key) for run in runs], value=runs[0].key,
                        label="Model (run)", elem_id="model")
    with gr.Tab("Draw"):
        canvas = gr.Sketchpad(
            type="numpy", image_mode="RGBA", canvas_size=(400, 400), layers=False,
            brush=gr.Brush(default_size=14, colors=["#000000"], color_mode="fixed"),
            transforms=(), label="Draw one digit", elem_id="canvas")
    with gr.Tab("Upload"):
        upload = gr.File(label="A photo or image of one digit", type="filepath",
                         elem_id="upload")
    with gr.Tab("Webcam"):
        camera = gr.Image(sources=["webcam"], type="numpy", label="Webcam photo",
                          elem_id="camera")
    return model, canvas, upload, camera


def _answers() -> list:
    """Verdict, probabilities, the image the model saw, its warnings, every model's answer."""
    verdict = gr.Markdown(logic.DRAW, elem_id="verdict")
    bars = gr.Label(num_top_classes=10, show_heading=False, label="Probability of each digit",
                    elem_id="probabilities")
    with gr.Row():
        seen = gr.Image(label="What the model saw (28x28)", format="png", interactive=False,
                        height=240, elem_id="seen")
        notes = gr.Markdown(elem_id="notes")
    return [verdict, bars, seen, notes, gr.Markdown(elem_id="comparison")]


def _insides(run: AppRun) -> tuple:
    """Feature maps and their scales; the history slider, its words; conv1's filters."""
    maps = gr.Image(label="Feature maps of every conv layer", format="png", interactive=False,
                    elem_id="maps")
    maps_note = gr.Markdown(elem_id="maps-note")
    with gr.Row():
        with gr.Column(scale=5):
            slider = _slider(run)
            history_note = gr.Markdown(logic.history_text(run, len(run.history) - 1),
                                       elem_id="history-note")
        filters = gr.Image(label="First layer's filters", format="png", interactive=False,
                           elem_id="filters", scale=4)
    return slider, [maps, maps_note, filters, history_note]


def build(runs: list[AppRun]) -> gr.Blocks:
    """The page for ``runs`` (the first is chosen at start)."""
    index = {run.key: i for i, run in enumerate(runs)}

    def handler(prepare):
        def handle(value, key, position):
            prepared, chosen = prepare(value), index[key]
            return (prepared, *_outputs(runs[chosen], prepared, position, runs, chosen))
        return handle

    def pick(key, prepared):
        run = runs[index[key]]
        return (_slider(run), *_outputs(run, prepared, len(run.history) - 1, runs, index[key]))

    def move(position, key, prepared):
        i = logic.inside(runs[index[key]], prepared, position)
        return i.maps, i.maps_note, i.filters, i.history_note

    with gr.Blocks(title=TITLE, analytics_enabled=False) as page:
        gr.Markdown(f"## {TITLE}\n{INTRO}")
        state = gr.State(None)
        with gr.Row():
            with gr.Column(scale=5):
                model, canvas, upload, camera = _inputs(runs)
            with gr.Column(scale=4):
                answers = _answers()
        slider, insides = _insides(runs[0])
        shown = [*answers, *insides]
        for source, prepare, name in ((canvas, logic.from_canvas, "draw"),
                                      (upload, logic.from_file, "upload"),
                                      (camera, logic.from_camera, "camera")):
            source.change(handler(prepare), [source, model, slider], [state, *shown],
                          api_name=name, trigger_mode="always_last", show_progress="hidden")
        model.change(pick, [model, state], [slider, *shown], api_name="pick")
        slider.change(move, [slider, model, state], insides, api_name="history",
                      trigger_mode="always_last", show_progress="hidden")
        page.load(pick, [model, state], [slider, *shown], api_name=False)
    return page
