"""The app never misleads: one browser test per way it used to (issue "The app must never mislead").

Each test drives Debian's Chromium through Playwright against the app on tiny
families (two evaluated with the real offline scorers, one with a nearest-anchor
gate, the synthetic fallback) and waits for page states, never for time.
Screenshots go to tests/e2e_screenshots/.
"""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import pytest
from browser_support import E2E, TIMEOUT, app_page, browser, press_slider_to, set_slider, shot, wait_w_text  # noqa: F401
from ui_support import rich_app_env  # noqa: F401  (fixture)

pytestmark = E2E


def at(url: str, family: str, w: str | None = None) -> str:
    return f"{url}?family={family}" + (f"&w={w}" if w else "")


def plot_traces(page) -> list[dict]:
    return page.evaluate("""() => document.querySelector('#pa-front .pa-plot').data.map(t => ({
        name: t.name || '', color: (t.marker && t.marker.color) || (t.line && t.line.color) || null,
        x: Array.from(t.x || []), y: Array.from(t.y || []), symbol: t.marker ? t.marker.symbol : null,
        text: t.text || null, customdata: t.customdata || null }))""")


def wait_plot(page, predicate_js: str):
    page.wait_for_function(f"""() => {{ const gd = document.querySelector('#pa-front .pa-plot');
        if (!gd || !gd.data) return false; const traces = gd.data; return ({predicate_js})(traces); }}""")


def choose(page, elem_id: str, option: str):
    """Pick ``option`` in a Gradio dropdown (single or multi select)."""
    box = page.locator(f"#{elem_id} input")
    box.focus()
    box.fill(option)  # filters the options to this one
    box.press("ArrowDown")
    box.press("Enter")
    box.press("Escape")


def send(page, message: str):
    page.locator("#pa-msg textarea").fill(message)
    page.locator("#pa-msg textarea").press("Enter")


def wait_answers(page, n: int):
    page.wait_for_function(f"() => document.querySelectorAll('#pa-chat sub.pa-w-label').length >= {n}")


def wait_idle(demo, deadline_s: float = 120):
    """Until no generation runs in the app (its cancel registry is empty)."""
    end = time.monotonic() + deadline_s
    while demo.paretoapp_context.cancels.running():
        assert time.monotonic() < end, "a generation kept running after it was cancelled"
        time.sleep(0.05)


@pytest.fixture()
def app(rich_app_env):  # noqa: F811
    return rich_app_env


# 1 ------------------------------------------------------------------------------------------------
def test_compared_fronts_share_one_reference_point(browser, app):  # noqa: F811
    from paretoapp import pareto
    demo, url, catalog, _ = app
    with app_page(browser, at(url, "tiny-evaluated")) as page:
        choose(page, "pa-overlay", "tiny-evaluated-b")
        page.locator("#pa-summary").get_by_text("tiny-evaluated-b").wait_for()
        text = page.locator("#pa-summary").inner_text()
        assert text.count("reference point") == 1, "one reference point, shown once"
        fronts = {k: catalog.get(k).results for k in ("tiny-evaluated", "tiny-evaluated-b")}
        _, ref = pareto.compare_fronts({k: r.front_points() for k, r in fronts.items()}, maximise=[True, True])
        for key, r in fronts.items():
            row = next(line for line in text.splitlines() if line.startswith(key + "\t") or line.startswith(key + " "))
            shown = float(row.split("\t")[2].split()[0]) if "\t" in row else float(row.split()[3])
            assert shown == pytest.approx(pareto.hypervolume(r.front_points(), ref, r.maximise), rel=5e-3), key
        assert pareto.format_reference(ref, fronts["tiny-evaluated"].objectives) in text
        shot(page, "10_compare_shared_reference")


# 2 ------------------------------------------------------------------------------------------------
def test_the_star_is_drawn_only_where_the_front_was_evaluated(browser, app):  # noqa: F811
    from paretoapp.ui.live_eval import evaluate_at
    demo, url, catalog, _ = app
    with app_page(browser, at(url, "tiny-evaluated", "1.5,-0.5")) as page:
        wait_w_text(page, "extrapolated")
        page.locator("#pa-marker").get_by_text("not evaluated").wait_for()
        assert not [t for t in plot_traces(page) if t["name"].startswith("current w")]
        page.locator("#pa-evaluate").click()
        wait_plot(page, "ts => ts.some(t => (t.name || '').endsWith('evaluated now'))")
        live = next(t for t in plot_traces(page) if t["name"].endswith("evaluated now"))
        want = evaluate_at(catalog.get("tiny-evaluated"), [1.5, -0.5])["means"]
        assert live["x"][0] == pytest.approx(want["harmless_offline"]) and live["y"][0] == pytest.approx(
            want["helpful_offline"])
        page.locator("#pa-marker").get_by_text("evaluated in this session").wait_for()  # and the star sits on it
        wait_plot(page, "ts => ts.some(t => t.name === 'current w')")
        shot(page, "11_not_evaluated_then_evaluated")
        set_slider(page, "pa-w0", 0.3)
        page.locator("#pa-marker").get_by_text("estimated").wait_for()
        wait_plot(page, "ts => ts.some(t => t.name === 'current w (estimated)' && t.marker.symbol === 'star-open')")


# 3 ------------------------------------------------------------------------------------------------
def test_the_keyboard_moves_the_preference_the_chat_uses(browser, app):  # noqa: F811
    with app_page(browser, at(app[1], "tiny-random")) as page:
        assert page.locator("#pa-w0 input[type=range]").input_value() == "0.5"
        press_slider_to(page, "pa-w0", "0.6", caption="harmless 0.6")  # ten presses, or more where one is lost
        send(page, "Hello")
        wait_answers(page, 1)
        assert "answered by tiny-random at w = (0.6, 0.4)" in page.locator("#pa-chat sub.pa-w-label").last.inner_text()


# 4 ------------------------------------------------------------------------------------------------
def test_an_out_of_range_number_is_clamped_without_an_error(browser, app):  # noqa: F811
    with app_page(browser, at(app[1], "tiny-random")) as page:
        set_slider(page, "pa-w0", 7, expect="harmless 2")
        page.wait_for_function("() => document.querySelector('#pa-w0 input[type=number]').value === '2'")
        page.locator("#pa-marker").get_by_text("not evaluated").wait_for()
        assert page.get_by_text("Error", exact=True).count() == 0
        assert page.locator(".toast-body").count() == 0


# 5 ------------------------------------------------------------------------------------------------
@pytest.fixture()
def slow_tiny_model(app):
    """The tiny model, slowed to ~30 ms a step, so a stream is still running when the test presses a button."""
    model = app[2].get("tiny-random").policy().model
    hook = model.register_forward_pre_hook(lambda *_: time.sleep(0.03))
    yield
    hook.remove()


def test_clear_and_stop_end_a_streaming_answer(browser, app, slow_tiny_model):  # noqa: F811
    demo = app[0]
    with app_page(browser, at(app[1], "tiny-random")) as page:
        page.get_by_text("Generation settings").click()
        set_slider(page, "pa-max-tokens", 512)
        send(page, "Tell me a very long story.")
        page.wait_for_function("""() => { const b = document.querySelectorAll('#pa-chat [data-testid="bot"]');
            return b.length && b[b.length - 1].innerText.length > 20 && !b[b.length - 1].innerText.includes('reading'); }""")
        page.locator("#pa-clear").click()
        page.wait_for_function("() => !document.querySelector('#pa-chat [data-testid=\"bot\"]')")
        wait_idle(demo)
        assert page.locator('#pa-chat [data-testid="bot"]').count() == 0, "a cleared chat stays clear"

        page.get_by_role("tab", name="Side by side").click()
        page.locator("#pa-cmp-prompt textarea").fill("Tell me a very long story.")
        page.locator("#pa-cmp-go").click()
        page.wait_for_function("() => document.querySelector('#pa-answer-a textarea').value.length > 20")
        page.locator("#pa-cmp-stop").click()
        page.locator("#pa-scores-a").get_by_text("stopped").wait_for()
        assert "generating" not in page.locator("#pa-scores-a").inner_text()
        assert "generating" not in page.locator("#pa-scores-b").inner_text()
        shot(page, "12_side_by_side_stopped")


# 6 ------------------------------------------------------------------------------------------------
def test_a_very_long_message_gets_a_warning_and_stays_in_the_box(browser, app):  # noqa: F811
    with app_page(browser, at(app[1], "tiny-random")) as page:
        long = "word " * 5000
        send(page, long)
        page.locator(".toast-body").get_by_text("tokens").wait_for()
        assert page.locator("#pa-msg textarea").input_value().strip() == long.strip()
        assert page.locator('#pa-chat [data-testid="user"]').count() == 0
        shot(page, "13_long_message_warning")


# 7 ------------------------------------------------------------------------------------------------
def test_answers_carry_their_w_and_a_click_sets_it_again(browser, app):  # noqa: F811
    with app_page(browser, at(app[1], "tiny-random")) as page:
        set_slider(page, "pa-w0", 1, expect="harmless 1")
        send(page, "Hello")
        wait_answers(page, 1)
        set_slider(page, "pa-w0", 0, expect="harmless 0 ")
        send(page, "Hello again")
        wait_answers(page, 2)
        labels = page.locator("#pa-chat sub.pa-w-label")
        assert "w = (1, 0)" in labels.nth(0).inner_text() and "w = (0, 1)" in labels.nth(1).inner_text()
        assert "stopped" not in labels.nth(0).inner_text(), "an answer nobody stopped is not labelled stopped"
        assert labels.nth(0).locator("a").get_attribute("href") == "?family=tiny-random&w=1,0"
        page.locator('#pa-chat [data-testid="bot"]').first.click()
        page.wait_for_function("() => document.querySelector('#pa-w0 input[type=number]').value === '1'")
        wait_w_text(page, "harmless 1")
        shot(page, "14_chat_labels")


# 8 ------------------------------------------------------------------------------------------------
def test_the_plot_explains_its_axes_and_shows_the_family_card(browser, app):  # noqa: F811
    with app_page(browser, at(app[1], "tiny-evaluated")) as page:
        axes = page.locator("#pa-axes").inner_text()
        assert "harmless_offline" in axes and "helpful_offline" in axes and "higher is better" in axes
        assert "held-out prompts" in axes
        card = page.locator("#pa-card").inner_text()
        assert "Rewarded Soups" in card and "extrapolation allowed" in card and "trained on" in card


# 9 ------------------------------------------------------------------------------------------------
def test_colours_stay_put_and_points_several_w_share_are_one_marker(browser, app):  # noqa: F811
    with app_page(browser, at(app[1], "tiny-evaluated")) as page:
        choose(page, "pa-overlay", "tiny-evaluated-b")
        wait_plot(page, "ts => ts.some(t => t.name === 'tiny-evaluated-b')")
        before = {t["name"]: t["color"] for t in plot_traces(page) if t["name"].startswith("tiny-evaluated")}
        other = next(t for t in plot_traces(page) if t["name"] == "tiny-evaluated-b")
        i = 0  # click the other family's first point: it becomes the active family
        gd_trace = [t["name"] for t in plot_traces(page)].index("tiny-evaluated-b")
        page.locator("#pa-front .scatterlayer .trace").nth(gd_trace).locator(".point").nth(i).click(force=True)
        page.wait_for_function("() => document.querySelector('#pa-family input').value === 'tiny-evaluated-b'")
        page.wait_for_function("""() => { const ts = document.querySelector('#pa-front .pa-plot').data;
            return ts.some(t => t.name === 'tiny-evaluated') && ts.some(t => t.name === 'tiny-evaluated-b'); }""")
        after = {t["name"]: t["color"] for t in plot_traces(page) if t["name"].startswith("tiny-evaluated")}
        assert after == before and len(set(before.values())) == 2
        assert other["customdata"][i][0] == "tiny-evaluated-b"
    with app_page(browser, at(app[1], "tiny-anchors")) as page:
        family = next(t for t in plot_traces(page) if t["name"] == "tiny-anchors")
        means = app[2].get("tiny-anchors").results.means
        spots = {(round(a, 9), round(b, 9)) for a, b in zip(means["harmless_offline"], means["helpful_offline"])}
        assert len(family["customdata"]) == len(spots) < len(means)   # one marker per spot: each can be clicked
        assert any("2 w give this same point" in t for t in family["text"])
        shot(page, "15_coincident_points")


# 10 -----------------------------------------------------------------------------------------------
def test_a_phone_sees_every_tab_and_reaches_the_chat(browser, app):  # noqa: F811
    with app_page(browser, at(app[1], "tiny-evaluated"), width=390, height=844) as page:
        for name in ("Explore", "Side by side", "Prompts", "Export", "About"):
            tab = page.get_by_role("tab", name=name)
            tab.wait_for(state="visible")  # Gradio measures the tab bar after the page settles (CI, 2026-12-07)
            box = tab.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390, name
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
        assert page.locator("#pa-chat").bounding_box()["y"] < 1100, "the chat starts within reach on a phone"
        shot(page, "16_phone_390")


# 11 -----------------------------------------------------------------------------------------------
def test_about_shows_no_build_paths_and_the_app_opens_on_rewarded_soups(browser, tmp_path):  # noqa: F811
    from ui_support import launch, tiny_family_dir, variant_family

    from paretoapp.ui import build_catalog
    fam = tiny_family_dir(tmp_path)
    assets = tmp_path / "assets"
    variant_family(fam, assets / "a-panacea", "a-panacea", method="panacea", evaluate=False)
    soups = variant_family(fam, assets / "z-soups", "z-soups", evaluate=False)
    manifest = json.loads((soups / "family.json").read_text())
    manifest["training"]["adapter"] = str(tmp_path / "build" / "run" / "adapter")  # what a trainer records
    (soups / "family.json").write_text(json.dumps(manifest))
    demo = launch(build_catalog([], assets))
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
    try:
        page = ctx.new_page()  # these families have no results: no front to wait for
        page.set_default_timeout(TIMEOUT)
        page.goto(demo.local_url)
        page.wait_for_function("() => { const f = document.querySelector('#pa-family input'); "
                               "return f && f.value === 'z-soups'; }")
        page.get_by_role("tab", name="About").click()
        about = page.locator("#pa-about").inner_text()
        assert "z-soups" in about and str(tmp_path) not in about and "/build/" not in about
    finally:
        ctx.close()
        demo.close()


# 12 -----------------------------------------------------------------------------------------------
def test_export_offers_dtype_and_lora_and_leaves_one_file_that_expires(browser, app):  # noqa: F811
    import os
    export_dir = Path(app[3])
    with app_page(browser, at(app[1], "tiny-random", "0.75,0.25")) as page:
        page.get_by_role("tab", name="Export").click()
        choose(page, "pa-export-dtype", "bfloat16")
        page.locator("#pa-export-name textarea").fill("merged-bf16")
        page.locator("#pa-export-go").click()
        page.locator("#pa-export-status").get_by_text("merged-bf16.zip").wait_for()
        merged = next(export_dir.rglob("merged-bf16.zip"))
        with zipfile.ZipFile(merged) as zf:
            assert json.loads(zf.read("merged-bf16/config.json"))["dtype"] == "bfloat16"
        assert not [p for p in export_dir.rglob("merged-bf16") if p.is_dir()], "no folder left beside the zip"
        merged_size = merged.stat().st_size

        old = time.time() - 10 * 3600
        os.utime(merged, (old, old))  # as if built long ago: the next export removes it
        page.get_by_text("LoRA adapter (a few MB)").click()
        page.locator("#pa-export-name textarea").fill("mix-lora")
        page.locator("#pa-export-go").click()
        page.locator("#pa-export-status").get_by_text("mix-lora.zip").wait_for()
        lora = next(export_dir.rglob("mix-lora.zip"))
        with zipfile.ZipFile(lora) as zf:
            names = zf.namelist()
        assert "mix-lora/adapter_model.safetensors" in names and "mix-lora/model.safetensors" not in names
        assert lora.stat().st_size < merged_size / 2
        assert not merged.exists(), "an export older than the time limit is removed"
        shot(page, "17_export_lora")
