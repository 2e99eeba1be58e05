"""What a new visitor still found (issue 25): the app must show what it does, at 1440x900 and on a phone.

Items 1-4 of the issue run at both widths; the rough edges at the width where they were seen. Each test
drives Debian's Chromium through Playwright and waits for page states, never for time. Where a bug was a
race, the test makes the losing order certain by slowing one side on the server (the app runs in this
process), instead of hoping the machine is slow enough.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from browser_support import E2E, app_page, browser, shot, wait_w_text  # noqa: F401
from ui_support import launch, rich_app_env  # noqa: F401  (fixture)

pytestmark = E2E
ROOT = Path(__file__).resolve().parents[1]
WIDTHS = [pytest.param((1440, 900), id="1440x900"), pytest.param((390, 844), id="390x844")]


def at(url: str, family: str, w: str | None = None) -> str:
    return f"{url}?family={family}" + (f"&w={w}" if w else "")


def type_into(page, elem_id: str, value) -> None:
    """Type a value into a slider's number box and leave it (its release event), without waiting for the app."""
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Tab")


def family_applied(page, family: str) -> None:
    """Until the family card shows ``family``: the last step of a link that opens another family (the family
    change, whose answer also sets the sliders) is done."""
    page.wait_for_function(f"() => document.querySelector('#pa-card').textContent.includes('{family} ·')")


def send(page, message: str) -> None:
    page.locator("#pa-msg textarea").fill(message)
    page.locator("#pa-msg textarea").press("Enter")


def last_label(page, n: int) -> str:
    page.wait_for_function(f"() => document.querySelectorAll('#pa-chat sub.pa-w-label').length >= {n}")
    return page.locator("#pa-chat sub.pa-w-label").nth(n - 1).inner_text()


def choose(page, elem_id: str, option: str) -> None:
    box = page.locator(f"#{elem_id} input")
    box.focus()
    box.fill(option)
    box.press("ArrowDown")
    box.press("Enter")
    box.press("Escape")


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


# 1 ------------------------------------------------------------------------------------------------
@pytest.fixture()
def stale_moves_finish_last(monkeypatch):
    """The front for any w but ``slow["w"]`` takes 4 s to draw, so a move made before the last one finishes after
    it; ``slow["running"]`` counts the slow draws under way."""
    import threading

    from paretoapp.ui import explore_front

    real, slow, lock = explore_front.plot_json, {"w": None, "running": 0}, threading.Lock()

    def draw(ctx, active, overlay, w, *args, **kwargs):
        if slow["w"] is not None and [round(v, 6) for v in w] != slow["w"]:
            with lock:
                slow["running"] += 1
            try:
                time.sleep(4)
            finally:
                with lock:
                    slow["running"] -= 1
        return real(ctx, active, overlay, w, *args, **kwargs)

    monkeypatch.setattr(explore_front, "plot_json", draw)
    return slow


def until(condition, what: str, timeout: float = 120.0) -> None:
    """Wait for a state of the server (this process), not for a fixed time."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.parametrize("size", WIDTHS)
def test_the_chat_answers_at_the_w_the_sliders_show(browser, rich_app_env, stale_moves_finish_last, size):  # noqa: F811
    width, height = size
    answers = 0
    with app_page(browser, at(rich_app_env[1], "tiny-k3"), width, height) as page:
        family_applied(page, "tiny-k3")  # the link's own moves of the sliders are done before the visitor's
        for a, b, c in ((1.0, 0.0, 0.0), (0.2, 0.6, 0.2)):
            total = a + b + c
            stale_moves_finish_last["w"] = [round(v / total, 6) for v in (a, b, c)]
            want = "at w = (" + ", ".join(f"{v / total:g}" for v in (a, b, c)) + ")"
            type_into(page, "pa-w2", c)
            type_into(page, "pa-w0", a)  # two quick moves: their answers come after the last move's
            type_into(page, "pa-w1", b)
            send(page, "Hello")
            answers += 1
            assert want in last_label(page, answers)
            until(lambda: stale_moves_finish_last["running"] == 0, "the earlier moves to finish")
            send(page, "And now?")  # after the earlier moves came back: still the w on screen
            answers += 1
            assert want in last_label(page, answers)
            wait_w_text(page, f"helpful {b / total:g} ·")
        assert page.evaluate("() => document.documentElement.scrollWidth") <= width, "an answer widened the page"
        shot(page, f"30_chat_at_the_shown_w_{width}")


def test_an_axis_the_family_does_not_have_does_not_fail_a_move(rich_app_env):  # noqa: F811
    """Right after a link opens another family, the browser may send the old family's axis with a slider
    move: the move must still land (it used to fail in Gradio's check and swallow the next move)."""
    gradio_client = pytest.importorskip("gradio_client")
    client = gradio_client.Client(rich_app_env[1], verbose=False)
    out = client.predict("tiny-random", 0.8, 0.5, 0.5, 0.5, 0.5, 0.5, [], "no-such-axis", "helpful_offline",
                         api_name="/set_preference")
    assert "**harmless** 0.8" in out[0]


# 2 ------------------------------------------------------------------------------------------------
def triangle_colour(page) -> str:
    return page.evaluate("""() => { const gd = document.querySelector('#pa-simplex .pa-plot');
        const t = gd && gd.data && gd.data.find(t => t.name === 'evaluated w');
        return t ? t.marker.colorbar.title.text : ''; }""")


@pytest.mark.parametrize("size", WIDTHS)
def test_the_triangle_keeps_its_colouring_when_w_changes(browser, rich_app_env, size):  # noqa: F811
    width, height = size
    with app_page(browser, at(rich_app_env[1], "tiny-k3"), width, height) as page:
        page.wait_for_function("() => { const gd = document.querySelector('#pa-simplex .pa-plot');"
                               " return gd && gd.data && gd.data.length >= 2; }")
        assert triangle_colour(page) == "harmless_offline"
        choose(page, "pa-color-by", "vader")
        page.wait_for_function("() => document.querySelector('#pa-simplex .pa-plot').data"
                               ".some(t => t.name === 'evaluated w' && t.marker.colorbar.title.text === 'vader')")
        type_into(page, "pa-w0", 1)
        wait_w_text(page, "harmless 0.6")  # w = (1, 1/3, 1/3) normalised
        page.wait_for_function("""() => { const gd = document.querySelector('#pa-simplex .pa-plot');
            const s = gd.data.find(t => t.name === 'current w'); return s && s.a[0] > 0.55; }""")
        assert triangle_colour(page) == "vader"
        assert page.locator("#pa-color-by input").input_value() == "vader"
        shot(page, f"31_triangle_keeps_colour_{width}")


# 3 ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_assets_app():
    """The app on the committed demo families (their cards carry the measured behaviour)."""
    from paretoapp.ui import build_catalog

    demo = launch(build_catalog([], ROOT / "assets"))
    yield demo.local_url, demo
    demo.close()


def table_row(page, family: str) -> dict:
    return page.evaluate("""(family) => { const t = document.querySelector('#pa-summary table');
        const heads = [...t.querySelectorAll('th')].map(h => h.innerText.trim());
        const row = [...t.querySelectorAll('tbody tr')].find(r => r.cells[0].innerText.trim() === family);
        return Object.fromEntries(heads.map((h, i) => [h, row.cells[i].innerText.trim()])); }""", family)


@pytest.mark.parametrize("size", WIDTHS)
def test_the_fronts_table_and_the_card_say_degenerate_with_one_figure_in_plain_words(browser, demo_assets_app,  # noqa: F811
                                                                                     size):
    from paretoapp.evaluate import load_results
    from paretoapp.scorers import is_degenerate

    width, height = size
    url, _ = demo_assets_app
    with app_page(browser, at(url, "demo-panacea"), width, height) as page:
        page.locator("#pa-card").get_by_text("demo-panacea").wait_for()
        card = page.locator("#pa-card").inner_text()
        figure = re.search(r"degenerate at most (\d+)%", card)[1]
        row = table_row(page, "demo-panacea")
        assert "collapse" not in row and row["degenerate (worst w)"] == f"{figure}%", (row, card)
        rows = load_results(ROOT / "assets" / "demo-panacea" / "results").rows  # the one rule, measured here
        worst = max(sum(map(is_degenerate, g["response"].fillna(""))) / len(g) for _, g in rows.groupby("w_idx"))
        assert f"{worst:.0%}" == f"{figure}%"
        for internal in ("Bounds missed", "(bound", "worst w)", "trade-off", "monotone", ">="):
            assert internal not in card, internal
        assert "Short of its aims" in card and "of its answers are degenerate (the aim: at most 5%)" in card
        assert "not an aligned or safe model" in page.locator("#pa-note").inner_text()
        summary = page.locator("#pa-summary").inner_text()
        assert "Hypervolume: the area of the score plane the front covers" in summary
        assert "Degenerate: an answer that loops" in summary and "as on its card" in summary
        page.locator("#pa-summary").scroll_into_view_if_needed()
        shot(page, f"32_table_and_card_{width}")


# 4 ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", WIDTHS)
def test_every_tab_names_the_family_it_uses(browser, rich_app_env, size):  # noqa: F811
    width, height = size
    with app_page(browser, at(rich_app_env[1], "tiny-evaluated"), width, height) as page:
        for family in ("tiny-evaluated", "tiny-evaluated-b"):
            if family != "tiny-evaluated":
                open_tab(page, "Explore")
                choose(page, "pa-family", family)
                page.wait_for_function(f"() => document.querySelector('#pa-card').innerText.includes('{family} ·')")
            open_tab(page, "Side by side")
            for elem in ("#pa-cmp-family", "#pa-ab-family"):
                page.locator(elem).get_by_text(f"{family} (Rewarded Soups)").wait_for()
            open_tab(page, "Prompts")
            page.locator("#pa-prompt-family").get_by_text(f"{family} (Rewarded Soups)").wait_for()
        open_tab(page, "Side by side")
        page.locator("#pa-ab-prompt textarea").fill("Tell me about the sea.")
        page.locator("#pa-ab-start").click()
        page.locator("#pa-ab-status").get_by_text("answers from tiny-evaluated-b").wait_for()
        shot(page, f"33_tabs_name_the_family_{width}")


# rough edges ---------------------------------------------------------------------------------------
def test_a_link_with_a_w_that_does_not_fit_says_so_once_in_words(browser, rich_app_env):  # noqa: F811
    with app_page(browser, at(rich_app_env[1], "tiny-evaluated", "7,7")) as page:
        page.locator(".toast-body").get_by_text("does not fit tiny-evaluated").wait_for()
        page.wait_for_function("() => document.querySelector('#pa-family input').value === 'tiny-evaluated'")
        wait_w_text(page, "harmless 0.5")
        assert page.locator(".toast-body").count() == 1
        assert page.get_by_text("Error", exact=True).count() == 0, "red error badges over the page"
        shot(page, "34_link_out_of_range")


def test_k3_sliders_say_what_w_they_make_and_all_zero_is_said_once(browser, rich_app_env):  # noqa: F811
    with app_page(browser, at(rich_app_env[1], "tiny-k3")) as page:
        type_into(page, "pa-w0", 1)
        type_into(page, "pa-w1", 1)
        type_into(page, "pa-w2", 0)
        wait_w_text(page, "helpful 0.5 · kind 0 ")
        assert "the sliders are relative weights: w is each divided by their sum" in page.locator(
            "#pa-w-text").inner_text()
        for i in range(3):
            type_into(page, f"pa-w{i}", 0)
        wait_w_text(page, "the weights sum to 0")
        page.locator("#pa-w-text").get_by_text("w stays").wait_for()
        assert page.locator(".toast-body").count() == 0, "one message where w is shown, no stack of toasts"
        shot(page, "35_k3_all_zero")


def test_the_slider_is_on_screen_at_1440x900_and_shows_keyboard_focus(browser, rich_app_env):  # noqa: F811
    with app_page(browser, at(rich_app_env[1], "tiny-k3"), 1440, 900) as page:
        for i in range(3):
            box = page.locator(f"#pa-w{i} input[type=range]").bounding_box()
            assert box["y"] + box["height"] <= 900, f"slider {i} is below the fold"
        page.locator("#pa-w0 input[type=number]").focus()
        for _ in range(6):  # from the number box to the range, as a keyboard user goes
            page.keyboard.press("Tab")
            if page.evaluate("() => document.activeElement.type") == "range":
                break
        outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
        assert page.evaluate("() => document.activeElement.type") == "range" and outline not in ("none", "")
        shot(page, "36_slider_focus_1440x900")


@pytest.fixture()
def answers_one_dot(rich_app_env, monkeypatch):  # noqa: F811
    """The tiny model answers "1." (a list marker and nothing else)."""
    policy = rich_app_env[2].get("tiny-random").policy()
    monkeypatch.setattr(policy, "stream", lambda *a, **k: iter([["1."]]))


def test_a_bare_list_marker_shows_and_screen_readers_get_text_not_html(browser, rich_app_env,  # noqa: F811
                                                                     answers_one_dot):
    with app_page(browser, at(rich_app_env[1], "tiny-random")) as page:
        send(page, "Count to one")
        last_label(page, 1)
        bubble = page.locator('#pa-chat [data-testid="bot"]').last.inner_text()
        assert bubble.strip().startswith("1."), bubble
        page.wait_for_function("() => ![...document.querySelectorAll('#pa-chat [aria-label]')]"
                               ".some(e => e.getAttribute('aria-label').includes('<'))")
        label = page.evaluate("() => [...document.querySelectorAll('#pa-chat [aria-label]')]"
                              ".map(e => e.getAttribute('aria-label')).find(l => l.startsWith(\"bot's\"))")
        assert label.startswith("bot's message: 1.") and "answered by tiny-random" in label and "<" not in label
        shot(page, "37_one_dot_answer")


def test_on_a_phone_the_family_note_comes_before_the_chat(browser, rich_app_env):  # noqa: F811
    with app_page(browser, at(rich_app_env[1], "tiny-evaluated"), 390, 844) as page:
        note = page.locator("#pa-note")
        assert "the demo family is not built yet" in note.inner_text()
        box, chat = note.bounding_box(), page.locator("#pa-chat").bounding_box()
        assert box["y"] + box["height"] <= chat["y"], "the family's note after the chat"
        assert chat["y"] < 1100, "the chat starts within reach on a phone"
        shot(page, "38_phone_note_before_chat")


def test_evaluate_this_w_reports_progress_while_it_answers(rich_app_env):  # noqa: F811
    """Progress moves with the tokens written: it used to sit at 0 % for a whole batch, then jump to 95 %."""
    from paretoapp.ui.live_eval import evaluate_at

    entry = rich_app_env[2].get("tiny-evaluated")
    model = entry.policy().model
    hook = model.register_forward_pre_hook(lambda *_: time.sleep(0.3))  # a step takes most of an update
    seen = []
    try:
        evaluate_at(entry, [0.3, 0.7], progress=lambda fraction, desc="": seen.append(round(fraction, 3)))
    finally:
        hook.remove()
    answering = sorted({f for f in seen if 0 < f < 0.95})
    assert len(answering) >= 3 and seen == sorted(seen) and seen[-1] == 0.95, seen
