"""The app's page in a real browser: headless Chromium (Debian's ``chromium``) driven by
Playwright's Python API. Playwright's own browser download is not used.

With ``MNIST_LAB_APP_SCREENSHOT=docs/app.png`` the first test also saves its screenshot
there (the README's picture).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from test_app import clear_digit, photo_of
from user_images import load_mnist_test

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 120_000  # a slow, shared CI machine


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="Playwright is needed: pip install -e '.[test]'")
    if not Path(CHROMIUM).is_file():
        pytest.skip("Chromium is needed for the browser tests: apt-get install -y chromium")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, app_url):
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    page.goto(app_url, wait_until="load")
    page.wait_for_selector("#filters img", timeout=WAIT_MS)  # the page has loaded its model
    yield page
    page.close()


def text_of(page, selector: str) -> str:
    return page.locator(selector).inner_text()


def wait_for_text(page, selector: str, text: str) -> None:
    page.wait_for_function("([s, t]) => document.querySelector(s).innerText.includes(t)",
                           arg=[selector, text], timeout=WAIT_MS)


def loaded_width(page, selector: str, check) -> None:
    """Wait until the image has loaded (the page sets it before the browser fetches it)."""
    page.wait_for_function("s => { const i = document.querySelector(s);"
                           " return i && i.complete && i.naturalWidth > 0; }",
                           arg=selector, timeout=WAIT_MS)
    width = page.locator(selector).evaluate("img => img.naturalWidth")
    assert check(width), (selector, width)


def test_drawing_a_digit_shows_a_prediction_and_feature_maps(page, tmp_path):
    page.locator("#canvas button[aria-label=Brush]").click()
    box = page.locator("#canvas canvas").first.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    assert "Draw a digit" in text_of(page, "#verdict")
    for stroke in ([(-60, -90), (60, -90), (-5, 100)], [(-30, 5), (35, 5)]):  # a crossed 7
        page.mouse.move(cx + stroke[0][0], cy + stroke[0][1])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(cx + x, cy + y, steps=15)
        page.mouse.up()
    wait_for_text(page, "#verdict", "Prediction:")
    wait_for_text(page, "#maps-note", "Feature maps at step 300")
    loaded_width(page, "#maps img", lambda width: width > 400)
    loaded_width(page, "#seen img", lambda width: width == 224)
    assert text_of(page, "#maps-note").count("shared scale") == 2  # both conv layers
    shot = page.screenshot(path=str(tmp_path / "app.png"), full_page=True)
    if os.environ.get("MNIST_LAB_APP_SCREENSHOT"):
        Path(os.environ["MNIST_LAB_APP_SCREENSHOT"]).write_bytes(shot)


def test_uploading_a_known_mnist_digit_shows_that_digit(page, short_run, data_root, tmp_path):
    index, label = clear_digit(short_run, data_root)
    path = photo_of(load_mnist_test(data_root)[0][index], tmp_path / f"mnist_{index}.png")
    page.get_by_role("tab", name="Upload").click()
    page.locator("#upload input[type=file]").set_input_files(str(path))
    wait_for_text(page, "#verdict", "Prediction:")
    assert text_of(page, "#verdict").startswith(f"Prediction: {label} (probability")
    wait_for_text(page, "#maps-note", "Feature maps at step")


def test_moving_the_history_slider_changes_the_filters(page, tmp_path):
    image = page.locator("#filters img")
    before, source = image.screenshot(), image.get_attribute("src")
    assert "Step 300 of 300 (the final weights)" in text_of(page, "#history-note")
    number = page.locator("#history input[type=number]")
    number.fill("0")
    number.press("Enter")
    wait_for_text(page, "#history-note", "Step 100 of 300 (snapshot)")
    page.wait_for_function("s => { const i = document.querySelector('#filters img');"
                           " return i && i.src !== s && i.complete; }", arg=source,
                           timeout=WAIT_MS)
    (tmp_path / "before.png").write_bytes(before)
    (tmp_path / "after.png").write_bytes(page.locator("#filters img").screenshot())
    assert Image.open(tmp_path / "before.png").tobytes() != \
        Image.open(tmp_path / "after.png").tobytes()
