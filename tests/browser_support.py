"""Browser helpers for the end-to-end tests: Debian's Chromium driven by Playwright (never `playwright install`).

Every wait is for a state of the page (a value, a selector, a function returning true), never a fixed sleep:
the machines the tests run on are shared and slow down without warning.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from ui_support import CHROMIUM, CHROMIUM_ARGS

sync_api = pytest.importorskip("playwright.sync_api", reason="python playwright is not installed")
SHOTS = Path(__file__).parent / "e2e_screenshots"
TIMEOUT = 120_000  # the shared CI machine can be slow; tests wait for states, never sleep
CHROMIUM_OK = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing: install Debian's "
                                                                      "chromium (bash scripts/setup.sh --browser)")
E2E = [pytest.mark.e2e, CHROMIUM_OK]


def alnum(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", text)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def open_app(browser, url, width: int = 1440, height: int = 1000):
    ctx = browser.new_context(viewport={"width": width, "height": height})
    page = ctx.new_page()
    page.set_default_timeout(TIMEOUT)
    page.goto(url)
    page.wait_for_selector("#pa-front .scatterlayer .point")
    page.wait_for_function("() => { const b = document.querySelector('#pa-front .pa-plot'); return b && b._paBound; }")
    page.wait_for_function("() => document.body.dataset.paOpened === '1'")  # the link's w is in place
    family = parse_qs(urlparse(url).query).get("family")
    if family:  # the link's family is in place (its card, sliders and export dtype come in the load's answer)
        page.wait_for_function("f => (document.querySelector('#pa-card') || {}).textContent.includes(f + ' ·')",
                               arg=family[0])
    return ctx, page


@contextlib.contextmanager
def app_page(browser, url, width: int = 1440, height: int = 1000):
    """The app open at ``url`` in a fresh browser context (its own cookies and session), closed afterwards."""
    ctx, page = open_app(browser, url, width, height)
    try:
        yield page
    finally:
        ctx.close()


def shot(page, name: str):
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def set_slider(page, elem_id: str, value: float, expect: str | None = None):
    """Type `value` into a slider's number box; with `expect`, wait until the w caption shows it.

    The number box's blur is what fires `release`; on a loaded machine one blur was seen to go unanswered
    (CI, 2026-11-28), so with `expect` the typing is retried twice before the wait fails the test.
    """
    box = page.locator(f"#{elem_id} input[type=number]")
    for attempt in range(3):
        box.fill(str(value))
        box.press("Tab")  # `release` fires on blur of the number box
        if expect is None:
            return
        try:
            page.locator("#pa-w-text").get_by_text(expect, exact=False).wait_for(timeout=TIMEOUT // 3)
            return
        except sync_api.TimeoutError:
            if attempt == 2:
                raise


def wait_w_text(page, text: str):
    page.locator("#pa-w-text").get_by_text(text, exact=False).wait_for()


def press_slider_to(page, elem_id: str, target: str, caption: str, presses: int = 40):
    """Move slider ``#elem_id`` with the arrow keys, one press at a time, until its range reads ``target``
    and the w caption shows ``caption``.

    The test presses again until the state holds rather than counting presses: on a loaded machine a press
    was once lost (CI, 2026-12-06, when the app still wrote each clamped value back from the browser and a
    late write-back could undo the next press), and a browser test should not hang on the exact count.
    """
    rng = page.locator(f"#{elem_id} input[type=range]")
    moved = f"v => document.querySelector('#{elem_id} input[type=range]').value !== v"
    for _ in range(presses):
        before = rng.input_value()
        if before == target:
            try:
                page.locator("#pa-w-text").get_by_text(caption, exact=False).wait_for(timeout=20_000)
            except sync_api.TimeoutError:  # undone before the server saw it: the loop presses again
                continue
            if rng.input_value() == target:
                return
            continue
        rng.focus()
        rng.press("ArrowRight" if float(before) < float(target) else "ArrowLeft")
        with contextlib.suppress(sync_api.TimeoutError):  # a lost press: the loop presses again
            page.wait_for_function(moved, arg=before, timeout=10_000)
    raise AssertionError(f"slider {elem_id} never settled at {target} (it reads {rng.input_value()})")


def point_locator(page, w0: float):
    """The marker of the evaluated point with w_harmless == w0."""
    trace, index = page.evaluate(
        """w0 => { const gd = document.querySelector('#pa-front .pa-plot');
                   for (let t = 0; t < gd.data.length; t++) {
                     const cd = gd.data[t].customdata || [];
                     for (let i = 0; i < cd.length; i++) if (Math.abs(cd[i][2] - w0) < 1e-9) return [t, i];
                   } return [-1, -1]; }""", w0)
    assert trace >= 0, f"no point with w0={w0} on the plot"
    return page.locator("#pa-front .scatterlayer .trace").nth(trace).locator(".point").nth(index)


def click_point(page, w0: float, shown: str):
    """Click the point for w0 and wait for the slider to show it (retried once if the plot was mid-redraw)."""
    check = f"() => document.querySelector('#pa-w0 input[type=number]').value === '{shown}'"
    for attempt in range(2):
        point_locator(page, w0).click(force=True)
        try:
            page.wait_for_function(check, timeout=TIMEOUT // 2)
            return
        except sync_api.TimeoutError:
            if attempt:
                raise
