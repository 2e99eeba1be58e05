"""Exploring beyond one slider: the simplex for k = 3, pick by constraint, one prompt's front, blind A/B,
and links that open the app at a point. Each through gradio_client (the API) and in Chromium."""

from __future__ import annotations

import numpy as np
import pytest
from browser_support import CHROMIUM_OK, app_page, browser, set_slider, shot, wait_w_text  # noqa: F401
from ui_support import rich_app_env  # noqa: F401  (fixture)

gradio_client = pytest.importorskip("gradio_client")


@pytest.fixture(scope="module")
def client(rich_app_env):  # noqa: F811
    return gradio_client.Client(rich_app_env[1], verbose=False)


def at(url: str, family: str, w: str | None = None) -> str:
    return f"{url}?family={family}" + (f"&w={w}" if w else "")


# --------------------------------------------------------------------------- API
def test_api_pick_by_constraint_returns_the_picked_w(client, rich_app_env):  # noqa: F811
    from paretoapp.picking import pick
    result = rich_app_env[2].get("tiny-evaluated").results
    floor = float(np.median(result.means["helpful_offline"]))
    want = pick(result, {"helpful_offline": floor}, maximize="harmless_offline", interpolate=True)
    out = client.predict("tiny-evaluated", [], "harmless_offline", "helpful_offline", "harmless_offline",
                         None, floor, None, None, None, None, api_name="/pick")
    note = out[-1]
    assert "w = (" + ", ".join(f"{v:g}" for v in want.w) + ")" in note


def test_api_one_prompts_front_reads_the_table(client, rich_app_env):  # noqa: F811
    result = rich_app_env[2].get("tiny-evaluated").results
    prompt = result.rows["prompt"].iloc[0]
    fig, table = client.predict("tiny-evaluated", prompt, api_name="/prompt_front")
    rows = result.rows[result.rows["prompt"] == prompt]
    assert table.count("\n| (") == len(rows)
    assert f"{rows['harmless_offline'].iloc[0]:.3f}" in table


def test_api_evaluate_a_typed_prompt_across_the_front(client, rich_app_env):  # noqa: F811
    from paretoapp.ui.live_eval import evaluate_prompt
    fig, table = client.predict("tiny-evaluated", "Is the sea salty?", api_name="/evaluate_prompt")
    want = evaluate_prompt(rich_app_env[2].get("tiny-evaluated"), "Is the sea salty?")
    assert table.count("\n| (") == len(want)
    assert f"{want['helpful_offline'].iloc[0]:.3f}" in table
    # the typed prompt's kind is shown as what it is: a guess (with its probability when a classifier made it)
    assert want.attrs["kind"] and f"**This prompt** {want.attrs['kind']}" in table


def test_api_blind_ab_proposes_after_four_rounds(client):
    one, two, status = client.predict("tiny-evaluated", "Tell me about the sea.", 0.0, 16,
                                   api_name="/ab_start")
    assert "Round 1" in status and one != two
    for _ in range(4):
        one, two, status = client.predict(0.0, 16, api_name="/ab_choose_1")
    assert "Your w looks like" in status


# --------------------------------------------------------------------------- browser
# (Chromium tests: marked e2e; skipped where Debian's chromium is missing)


@pytest.mark.e2e
@CHROMIUM_OK
def test_the_simplex_sets_w_for_three_objectives(browser, rich_app_env):  # noqa: F811
    with app_page(browser, at(rich_app_env[1], "tiny-k3")) as page:
        page.wait_for_function("() => { const gd = document.querySelector('#pa-simplex .pa-plot'); "
                               "return gd && gd.data && gd.data.length >= 2; }")
        # a lattice point near the 'kind' corner: w = (0.05, 0.05, 0.9)
        index = page.evaluate("""() => { const gd = document.querySelector('#pa-simplex .pa-plot');
            const cd = gd.data[0].customdata; for (let i = 0; i < cd.length; i++)
              if (Math.abs(cd[i][4] - 0.9) < 1e-9 && Math.abs(cd[i][2] - 0.05) < 1e-9) return i; return -1; }""")
        assert index >= 0
        page.locator("#pa-simplex .scatterlayer .trace").first.locator(".point").nth(index).click(force=True)
        wait_w_text(page, "kind 0.9")
        assert page.locator("#pa-w2 input[type=number]").input_value() == "0.9"
        set_slider(page, "pa-w0", 1)  # a slider moves the star on the triangle too (normalised w)
        page.wait_for_function("""() => { const gd = document.querySelector('#pa-simplex .pa-plot');
            const s = gd.data.find(t => t.name === 'current w'); return s && s.a[0] > 0.5; }""")
        shot(page, "20_simplex_k3")


@pytest.mark.e2e
@CHROMIUM_OK
def test_pick_by_constraint_in_the_page_sets_the_slider_and_marks_the_plot(browser, rich_app_env):  # noqa: F811
    with app_page(browser, at(rich_app_env[1], "tiny-evaluated")) as page:
        page.get_by_text("Pick by constraint").click()
        result = rich_app_env[2].get("tiny-evaluated").results
        floor = float(np.median(result.means["helpful_offline"]))
        box = page.locator("#pa-bound1 input")
        box.fill(f"{floor}")
        page.locator("#pa-pick-go").click()
        page.locator("#pa-pick-note").get_by_text("w = (").wait_for()
        note = page.locator("#pa-pick-note").inner_text()
        shown = note.split("w = (")[1].split(")")[0]
        assert page.locator("#pa-w0 input[type=number]").input_value() == shown.split(",")[0].strip()
        page.wait_for_function("() => document.querySelector('#pa-front .pa-plot').data"
                               ".some(t => (t.name || '').startsWith('current w'))")
        shot(page, "21_pick_by_constraint")


@pytest.mark.e2e
@CHROMIUM_OK
def test_one_prompts_front_shows_answers_along_w(browser, rich_app_env):  # noqa: F811
    with app_page(browser, at(rich_app_env[1], "tiny-evaluated")) as page:
        page.get_by_role("tab", name="Prompts").click()
        page.locator("#pa-prompt-answers table").wait_for()
        rows = page.locator("#pa-prompt-answers tbody tr").count()
        assert rows == len(rich_app_env[2].get("tiny-evaluated").results.means)
        page.locator("#pa-prompt-own textarea").fill("Is the sea salty?")
        page.locator("#pa-prompt-go").click()
        page.wait_for_function("() => document.querySelector('#pa-prompt-answers').innerText.includes('(1, 0)')")
        shot(page, "22_one_prompt")


@pytest.mark.e2e
@CHROMIUM_OK
def test_blind_ab_in_the_page_proposes_a_w_and_uses_it(browser, rich_app_env):  # noqa: F811
    with app_page(browser, at(rich_app_env[1], "tiny-evaluated")) as page:
        page.get_by_role("tab", name="Side by side").click()
        page.locator("#pa-ab-prompt textarea").fill("Tell me about the sea.")
        page.locator("#pa-ab-start").click()
        page.locator("#pa-ab-status").get_by_text("Round 1").wait_for()
        for i in range(4):
            page.locator("#pa-ab-pick2").click()
            page.locator("#pa-ab-status").get_by_text(f"Round {i + 2}").wait_for()
        page.locator("#pa-ab-status").get_by_text("Your w looks like").wait_for()
        proposed = page.locator("#pa-ab-status").inner_text().split("Your w looks like (")[1].split(")")[0]
        page.locator("#pa-ab-use").click()
        page.get_by_role("tab", name="Explore").click()
        page.wait_for_function(f"() => document.querySelector('#pa-w0 input[type=number]').value === "
                               f"'{proposed.split(',')[0].strip()}'")
        shot(page, "23_blind_ab")


@pytest.mark.e2e
@CHROMIUM_OK
def test_a_link_opens_the_app_at_its_point(browser, rich_app_env):  # noqa: F811
    with app_page(browser, at(rich_app_env[1], "tiny-evaluated-b", "0.25,0.75")) as page:
        page.wait_for_function("() => document.querySelector('#pa-family input').value === 'tiny-evaluated-b'")
        page.wait_for_function("() => document.querySelector('#pa-w0 input[type=number]').value === '0.25'")
        link = page.locator("#pa-w-text a").get_attribute("href")
        assert link == "?family=tiny-evaluated-b&w=0.25,0.75"
