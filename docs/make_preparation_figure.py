"""Draw docs/preparation.png: user images before and after MNIST-style preparation.

    python docs/make_preparation_figure.py

Inputs made here and kept in docs/examples/ (the README's predict example reads
them): a synthetic 640x480 photo (an MNIST test digit in dark ink on lit paper,
from benchmarks/bench_prepare.py), a digit drawn with a thick pen in a paint
program's style (black on white), and a light digit on a transparent layer.
Below each, the 28x28 image the model sees.
"""

import shutil
import sys
import tempfile
from pathlib import Path

from matplotlib.figure import Figure
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_prepare import make_photos  # noqa: E402

from mnist_lab.recognise.prepare import prepare_image  # noqa: E402


def drawn_four(path: Path) -> Path:
    """A "4" drawn with straight thick strokes, black on white, 400x300."""
    im = Image.new("RGB", (400, 300), "white")
    pen = ImageDraw.Draw(im)
    pen.line([(230, 40), (120, 190), (290, 190)], fill="black", width=18, joint="curve")
    pen.line([(240, 110), (235, 270)], fill="black", width=18)
    im.save(path)
    return path


def light_on_clear(path: Path) -> Path:
    """A light "3" on a transparent layer (RGBA), as exported from a drawing app."""
    im = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    pen = ImageDraw.Draw(im)
    pen.arc((90, 40, 210, 150), 200, 90, fill=(255, 255, 255, 255), width=14)
    pen.arc((80, 140, 220, 270), 270, 160, fill=(255, 255, 255, 255), width=14)
    im.save(path)
    return path


def main() -> None:
    EXAMPLES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        photo = shutil.copy(make_photos(Path(tmp), 1, seed=4)[0], EXAMPLES / "photo.jpg")
    inputs = [(Path(photo), "photo (synthetic), 640x480 JPEG"),
              (drawn_four(EXAMPLES / "four.png"), "drawn, black on white PNG"),
              (light_on_clear(EXAMPLES / "three.png"), "light ink on a transparent layer")]
    fig = Figure(figsize=(9, 4.6))
    for i, (path, title) in enumerate(inputs):
        ax = fig.add_subplot(2, 3, i + 1)
        shown = Image.open(path).convert("RGBA")  # transparency shown over grey
        ax.imshow(Image.alpha_composite(Image.new("RGBA", shown.size, "grey"), shown))
        ax.set_title(title, fontsize=9)
        ax.axis("off")
        ax = fig.add_subplot(2, 3, i + 4)
        ax.imshow(prepare_image(path).image, cmap="gray", vmin=0, vmax=255)
        ax.set_title("prepared: 28x28, what the model sees", fontsize=9)
        ax.axis("off")
    fig.savefig(ROOT / "docs" / "preparation.png", dpi=80, bbox_inches="tight")


if __name__ == "__main__":
    main()
