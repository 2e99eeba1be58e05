"""The app's tabs as app.py assembles them: each returns only what it lists, a tab added to ``TABS`` follows
the family and w with no other edit, and the blind A/B round is a plain, picklable dataclass."""

from __future__ import annotations

import copy
import pickle

import gradio as gr
import pytest
from ui_support import second_family, tiny_family_dir

from paretoapp.preferences import PreferenceSpace


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    from paretoapp.ui import Catalog

    root = tmp_path_factory.mktemp("tabs")
    fam = tiny_family_dir(root)
    cat = Catalog()
    cat.add(fam, note="tiny random model (tests)")
    cat.add(second_family(fam, root / "copy"))
    return cat


def ids(components) -> set[int]:
    return {id(c) for c in components}


def test_every_tab_returns_only_the_components_it_lists(catalog):
    from paretoapp.ui import app
    from paretoapp.ui.session import AppContext, Session
    from paretoapp.ui.tab import Shown, Start

    first = catalog.get(catalog.keys[0])
    w0 = PreferenceSpace(first.manifest).default_w()
    with gr.Blocks():
        start = Start(AppContext(catalog), first, w0, on_space=False)
        with gr.Tabs():
            tabs = [app.ExploreTab(start), *(tab(start) for tab in app.TABS)]
    for key in catalog.keys:
        entry = catalog.get(key)
        other = [k for k in catalog.keys if k != key]
        shown = Shown(Session(first.key, w0).at(entry, [0.25, 0.75]), other, "harmless_score", "helpful_score")
        for tab in tabs:
            family, preference = tab.family_updates(entry, shown), tab.preference_updates(entry, shown)
            assert ids(family) <= ids(tab.family_outputs), type(tab).__name__
            assert ids(preference) <= ids(tab.preference_outputs), type(tab).__name__
    by_type = {type(t).__name__: t for t in tabs}
    about, export, side = by_type["AboutTab"], by_type["ExportTab"], by_type["SideBySideTab"]
    assert about.card in about.family_outputs and export.head in export.preference_outputs
    assert ids(side.heads.values()) <= ids(side.family_outputs)  # both slots reset to the new family's ends


def _fn(demo, name: str):
    return next(f for f in demo.fns.values() if getattr(f.fn, "__name__", "") == name)


def test_a_tab_added_to_TABS_follows_the_family_and_w(catalog, monkeypatch):
    from paretoapp.ui import app
    from paretoapp.ui.session import Session
    from paretoapp.ui.tab import Tab

    made = []

    class Where(Tab):
        """A tab that shows the family and the w: all it takes is this class and one entry in TABS."""

        def __init__(self, start):
            with gr.Tab("Where"):
                self.family, self.w = gr.Markdown(start.first.key), gr.Markdown(str(start.w0))
            made.append(self)

        family_outputs = property(lambda self: [self.family])
        preference_outputs = property(lambda self: [self.w])

        def family_updates(self, entry, shown):
            return {self.family: entry.key}

        def preference_updates(self, entry, shown):
            return {self.w: str(shown.session.w)}

    monkeypatch.setattr(app, "TABS", (*app.TABS, Where))
    demo = app.build_app(catalog)
    (where,) = made
    sess = Session(catalog.keys[0], [0.5, 0.5])

    on_family = _fn(demo, "on_family")
    out = on_family.fn("tiny-random-copy", sess, [], "harmless_score", "helpful_score")
    assert out[where.family] == "tiny-random-copy" and out[where.w] == "[0.5, 0.5]"
    assert ids([where.family, where.w]) <= ids(on_family.outputs)

    set_preference = next(f for f in demo.fns.values() if f.api_name == "set_preference")
    out = set_preference.fn("tiny-random", 0.25, *[0.0] * 5, [], "harmless_score", "helpful_score", sess)
    assert out[where.w] == "[0.25, 0.75]"
    # the endpoint's first outputs keep their order (clients unpack them); the new tab's come after them
    assert set_preference.outputs[-1] is where.w and len(set_preference.outputs) == 9

    pick = next(f for f in demo.fns.values() if f.api_name == "pick")  # a move within the family: the w follows
    assert where.w in pick.outputs and where.family not in pick.outputs  # (its outputs are an API's, by position)
    click = _fn(demo, "on_point_click")  # a move that may reach another family's point: every tab follows
    assert where.w in click.outputs and where.family in click.outputs
    assert len({id(c) for c in click.outputs}) == len(click.outputs)


class _Request:
    """What the load handler reads of a page's request: its query."""

    def __init__(self, **query):
        self.query_params = query


def test_a_link_to_another_family_lands_in_one_answer(catalog):
    """The link's family, w and every tab's view of that family come back from the load event together,
    and the dropdown's own handler hears only the visitor (``input``): a second, later answer for the same
    family change would overwrite what the visitor typed or chose meanwhile (seen in CI: the export dtype)."""
    from paretoapp.ui import app
    from paretoapp.ui.session import Session

    demo = app.build_app(catalog)
    on_load, on_family = _fn(demo, "on_load"), _fn(demo, "on_family")
    about = next(c for c in on_load.outputs if isinstance(c, gr.Markdown) and c.elem_id == "pa-card")
    sess = Session(catalog.keys[0], [0.5, 0.5])
    out = on_load.fn("tiny-random", [], "harmless_score", "helpful_score", sess,
                     _Request(family="tiny-random-copy", w="0.3,0.7"))
    moved = next(v for k, v in out.items() if isinstance(v, Session))
    assert (moved.family, moved.w) == ("tiny-random-copy", [0.3, 0.7])
    assert "tiny-random-copy" in out[about]  # the card, a family update, in the same answer
    assert set(ids(on_family.outputs)) <= set(ids(on_load.outputs))  # and every other one the dropdown's has
    listens = {t for dep in demo.config["dependencies"] if dep["id"] == on_load_id(demo, on_family)
               for t in dep["targets"]}
    assert {event for _, event in listens} == {"input"}
    # a link to the family already shown changes the w only
    out = on_load.fn("tiny-random", [], "harmless_score", "helpful_score", sess, _Request(w="0.2,0.8"))
    assert about not in out


def on_load_id(demo, block_fn) -> int:
    return next(i for i, f in demo.fns.items() if f is block_fn)


def test_the_blind_round_is_a_picklable_dataclass_that_unswaps_the_choice(catalog):
    from paretoapp.ui.blind_ab import BlindRound

    entry = catalog.get("tiny-random")
    st = BlindRound.start(entry, "Tell me about the sea.")
    assert st.family == "tiny-random" and st.search.rounds == 0
    st.pair, st.swapped = (0, 3), True
    st.record("1")  # answer 1 was the pair's second candidate
    st.swapped = False
    st.record("1")
    st.record("tie")
    assert st.search.history == [(0, 3, "b"), (0, 3, "a"), (0, 3, "tie")]
    assert st.proposed_w() is None  # fewer than four rounds
    for restored in (pickle.loads(pickle.dumps(st)), copy.deepcopy(st)):  # what gr.State and ZeroGPU do with it
        assert restored.search.history == st.search.history and restored.rng.random() == copy.copy(st.rng).random()
    st.record("2")
    assert st.proposed_w() in st.search.ws.tolist()
