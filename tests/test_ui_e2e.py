"""End-to-end: the app in Debian's Chromium, driven by Playwright (never `playwright install`).

Clicks a point on the front and sees the slider move, moves the slider and sees
the chat answer change, runs a side-by-side comparison, exports a zip, and
chats from two browser contexts at two preferences at once. Screenshots go to
tests/e2e_screenshots/ (gitignored).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_support import E2E, alnum, app_page, browser, click_point, open_app, set_slider, shot, wait_w_text  # noqa: F401  (fixture)
from ui_support import app_env  # noqa: F401  (fixture)

pytestmark = E2E
MAX_NEW = 96  # the app's default "Max new tokens"


def expected_chat(catalog, message: str, w) -> str:
    from paretoapp.generate import GenerationSettings
    policy = catalog.get("tiny-random").policy()
    return policy.generate([[{"role": "user", "content": message}]], [list(w)],
                           GenerationSettings(max_new_tokens=MAX_NEW, overflow="truncate_left"))[0]


@pytest.fixture()
def page(browser, app_env):  # noqa: F811
    with app_page(browser, app_env[1]) as page:
        yield page


def send_and_wait(page, message: str, expected: str):
    page.locator("#pa-msg textarea").fill(message)
    page.locator("#pa-msg textarea").press("Enter")
    want = alnum(expected)[:40]
    page.wait_for_function(
        """want => { const bots = document.querySelectorAll('#pa-chat [data-testid="bot"]');
                     if (!bots.length) return false;
                     const t = bots[bots.length - 1].innerText.replace(/[^0-9A-Za-z]/g, '');
                     return t.startsWith(want); }""", arg=want)
    return page.locator('#pa-chat [data-testid="bot"]').last.inner_text()


def test_click_a_point_moves_the_slider(page):
    number = page.locator("#pa-w0 input[type=number]")
    assert float(number.input_value()) == 0.5
    click_point(page, 0.25, "0.25")
    wait_w_text(page, "0.75")
    assert "harmless 0.25" in page.locator("#pa-w-text").inner_text().replace("\n", " ")
    # an extrapolated point (a diamond) moves it outside [0, 1] and says so
    click_point(page, 1.5, "1.5")
    wait_w_text(page, "extrapolated")
    # the star follows: it sits on the clicked point
    star = page.evaluate("""() => { const gd = document.querySelector('#pa-front .pa-plot');
        const s = gd.data.find(t => (t.name || '').startsWith('current w')); return s ? s.name : null; }""")
    assert star == "current w"
    shot(page, "01_click_point")


def test_moving_the_slider_changes_the_chat_answer(page, app_env):  # noqa: F811
    catalog = app_env[2]
    set_slider(page, "pa-w0", 1, expect="helpful 0")
    first = send_and_wait(page, "Tell me about the sea.", expected_chat(catalog, "Tell me about the sea.", [1.0, 0.0]))
    page.locator("#pa-clear").click()
    set_slider(page, "pa-w0", 0, expect="harmless 0 ")
    second = send_and_wait(page, "Tell me about the sea.", expected_chat(catalog, "Tell me about the sea.", [0.0, 1.0]))
    assert alnum(first) != alnum(second)
    shot(page, "02_chat")


def test_side_by_side_streams_both_answers_and_scores(page, app_env):  # noqa: F811
    from paretoapp.generate import GenerationSettings
    page.get_by_role("tab", name="Side by side").click()
    page.locator("#pa-cmp-prompt textarea").fill("What is the capital of France?")
    page.locator("#pa-cmp-go").click()
    page.locator("#pa-scores-a").get_by_text("harmless_offline").wait_for()
    page.locator("#pa-scores-b").get_by_text("helpful_offline").wait_for()
    a = page.locator("#pa-answer-a textarea").input_value()
    b = page.locator("#pa-answer-b textarea").input_value()
    policy = app_env[2].get("tiny-random").policy()
    want = policy.generate(["What is the capital of France?"] * 2, [[1.0, 0.0], [0.0, 1.0]],
                           GenerationSettings(max_new_tokens=MAX_NEW, overflow="truncate_left"))
    assert [a, b] == want and a != b
    assert "stopped" not in page.locator("#pa-scores-a").inner_text(), "nobody pressed Stop"
    shot(page, "03_side_by_side")


def test_export_offers_the_zip(page, app_env):  # noqa: F811
    click_point(page, 0.75, "0.75")
    page.get_by_role("tab", name="Export").click()
    page.locator("#pa-export-go").click()
    name = page.locator("#pa-export-file td.filename")
    name.wait_for()
    assert name.get_attribute("aria-label") == "tiny-random-w75_25.zip"
    href = page.locator("#pa-export-file [data-testid=download-link]").get_attribute("href")
    assert href.endswith("/tiny-random-w75_25.zip")
    assert "✅" in page.locator("#pa-export-status").inner_text()
    assert list(Path(app_env[3]).rglob("tiny-random-w75_25.zip"))
    shot(page, "04_export")


def test_two_browser_sessions_chat_at_different_w_at_once(browser, app_env):  # noqa: F811
    catalog = app_env[2]
    (c1, p1), (c2, p2) = open_app(browser, app_env[1]), open_app(browser, app_env[1])
    try:
        set_slider(p1, "pa-w0", 1, expect="helpful 0")
        set_slider(p2, "pa-w0", 0, expect="harmless 0 ")
        q = "Give me one tip."
        for p in (p1, p2):  # send both before waiting for either
            p.locator("#pa-msg textarea").fill(q)
            p.locator("#pa-msg textarea").press("Enter")
        t1 = send_and_wait_existing(p1, expected_chat(catalog, q, [1.0, 0.0]))
        t2 = send_and_wait_existing(p2, expected_chat(catalog, q, [0.0, 1.0]))
        assert alnum(t1) != alnum(t2)
        shot(p1, "05_session_a")
        shot(p2, "05_session_b")
    finally:
        c1.close()
        c2.close()


def send_and_wait_existing(page, expected: str) -> str:
    want = alnum(expected)[:40]
    page.wait_for_function(
        """want => { const bots = document.querySelectorAll('#pa-chat [data-testid="bot"]');
                     if (!bots.length) return false;
                     return bots[bots.length - 1].innerText.replace(/[^0-9A-Za-z]/g, '').startsWith(want); }""",
        arg=want)
    return page.locator('#pa-chat [data-testid="bot"]').last.inner_text()
