"""Every API endpoint of the app, through gradio_client, on a tiny family (no network)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from ui_support import app_env  # noqa: F401  (fixture)

gradio_client = pytest.importorskip("gradio_client")
MAX_CONTROLS = 6


@pytest.fixture(scope="module")
def client(app_env):  # noqa: F811
    return gradio_client.Client(app_env[1], verbose=False)


def controls(a: float) -> list[float]:
    return [a] + [0.0] * (MAX_CONTROLS - 1)


def _raw_text(history) -> str:
    content = history[-1]["content"]
    if isinstance(content, list):
        return "".join(c.get("text", "") for c in content if isinstance(c, dict))
    return str(content)


def _assistant_text(history) -> str:
    """The answer without the label the chat adds under it (family and w)."""
    from paretoapp.ui.chat import without_label
    return without_label(_raw_text(history))


def test_families_lists_objectives_and_ranges(client):
    fams = client.predict(api_name="/families")
    names = [f["name"] for f in fams]
    assert names == ["tiny-random", "tiny-random-copy"]
    first = fams[0]
    assert first["objectives"] == ["harmless", "helpful"]
    assert first["w_low"] == [-1.0, -1.0] and first["in_sample_high"] == [1.0, 1.0]
    assert first["hypervolume"] > 0 and len(first["reference_point"]) == 2


def test_generate_depends_on_w_and_matches_policy(client, app_env):  # noqa: F811
    catalog = app_env[2]
    a = client.predict("Hello there", [1.0, 0.0], "tiny-random", 12, 0.0, "", api_name="/generate")
    b = client.predict("Hello there", [0.0, 1.0], "tiny-random", 12, 0.0, "", api_name="/generate")
    assert a != b
    from paretoapp.generate import GenerationSettings
    direct = catalog.get("tiny-random").policy().generate(["Hello there"], [[1.0, 0.0]],
                                                          GenerationSettings(max_new_tokens=12))[0]
    assert a == direct


def test_generate_rejects_out_of_range_w(client):
    with pytest.raises(Exception, match="outside this family's allowed range"):
        client.predict("Hi", [5.0, -4.0], "tiny-random", 4, 0.0, "", api_name="/generate")


def test_set_preference_then_chat_uses_the_session_w(client, app_env):  # noqa: F811
    catalog = app_env[2]
    desc, plot, head, name, marker, *_ = client.predict("tiny-random", *controls(0.25), [], "harmless_score",
                                                       "helpful_score", api_name="/set_preference")
    assert "**harmless** 0.25" in desc and "**helpful** 0.75" in desc and "in the trained range" in desc
    fig = json.loads(plot)
    star = [t for t in fig["data"] if t.get("name", "").startswith("current w")]
    assert star and star[0]["marker"]["symbol"] == "star"
    assert name["placeholder"] == "tiny-random-w25_75"
    history, cleared = client.predict("Tell me a story", [], "tiny-random", "", 0.0, 16, api_name="/chat")
    assert cleared == "" and history[0]["role"] == "user" and history[-1]["role"] == "assistant"
    from paretoapp.generate import GenerationSettings
    policy = catalog.get("tiny-random").policy()
    expected = policy.generate([[{"role": "user", "content": "Tell me a story"}]], [[0.25, 0.75]],
                               GenerationSettings(max_new_tokens=16, overflow="truncate_left"))[0]
    assert _assistant_text(history) == expected
    from paretoapp.ui.chat import parse_label
    assert parse_label(_raw_text(history)) == ("tiny-random", [0.25, 0.75])  # the answer says which w made it
    assert "was evaluated" in marker
    # a different w in this session changes the next answer; nothing is merged
    client.predict("tiny-random", *controls(1.5), [], "harmless_score", "helpful_score", api_name="/set_preference")
    history2, _ = client.predict("Tell me a story", [], "tiny-random", "", 0.0, 16, api_name="/chat")
    assert _assistant_text(history2) != _assistant_text(history)


def test_extrapolated_w_is_labelled(client):
    desc, *_ = client.predict("tiny-random", *controls(-0.5), [], "harmless_score", "helpful_score",
                              api_name="/set_preference")
    assert "extrapolated" in desc


def test_out_of_range_slider_value_is_a_clear_error(client):
    with pytest.raises(Exception, match=r"5 is outside its range \[-1, 2\]; give a number between -1 and 2"):
        client.predict("tiny-random", *controls(5.0), [], "harmless_score", "helpful_score", api_name="/set_preference")


def test_chat_streams_and_clear_empties(client):
    job = client.submit("Say something", [], "tiny-random", "", 0.0, 24, api_name="/chat")
    outputs = [o for o in job]
    final = job.result()
    assert len(outputs) >= 2  # user message first, then growing answers
    assert final[0][-1]["role"] == "assistant" and _assistant_text(final[0])
    assert client.predict(api_name="/clear") == ([], "")


def test_compare_two_preferences_in_one_call(client, app_env):  # noqa: F811
    catalog = app_env[2]
    a_vals, b_vals = controls(1.0), controls(0.0)
    ans_a, ans_b, sc_a, sc_b, head_a, head_b = client.predict(
        "What is the capital of France?", "tiny-random", *a_vals, *b_vals, "", 0.0, 12, api_name="/compare")
    from paretoapp.generate import GenerationSettings
    policy = catalog.get("tiny-random").policy()
    expected = policy.generate(["What is the capital of France?"] * 2, [[1.0, 0.0], [0.0, 1.0]],
                               GenerationSettings(max_new_tokens=12, overflow="truncate_left"))
    assert [ans_a, ans_b] == expected and ans_a != ans_b
    assert "harmless_offline" in sc_a and "helpful_offline" in sc_b  # live scorers, as a Markdown table
    assert "**harmless** 1" in head_a and "**helpful** 1" in head_b


def test_compare_needs_a_prompt(client):
    with pytest.raises(Exception, match="Type a prompt"):
        client.predict("  ", "tiny-random", *controls(1.0), *controls(0.0), "", 0.0, 8, api_name="/compare")


def test_export_writes_a_loadable_zip(client, app_env):  # noqa: F811
    client.predict("tiny-random", *controls(0.75), [], "harmless_score", "helpful_score", api_name="/set_preference")
    path, status = client.predict("tiny-random", "my-export", api_name="/export")
    assert status.startswith("✅") and "my-export.zip" in status
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert "my-export/model.safetensors" in names and "my-export/README.md" in names
        card = zf.read("my-export/README.md").decode()
        prov = json.loads(zf.read("my-export/paretoapp_export.json"))
    assert prov["w"] == [0.75, 0.25] and "harmless = 0.75" in card
    assert list(Path(app_env[3]).rglob("my-export.zip"))  # written under the export dir
    # the export equals the bank at that w: load it and compare greedy text
    import transformers
    assert not [p for p in Path(app_env[3]).rglob("my-export") if p.is_dir()]  # only the zip stays on disk
    with zipfile.ZipFile(path) as zf:
        zf.extractall(Path(path).parent / "unzipped")
    folder = Path(path).parent / "unzipped" / "my-export"
    model = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    policy = app_env[2].get("tiny-random").policy()
    from paretoapp.generate import GenerationSettings
    s = GenerationSettings(max_new_tokens=8)
    # the exported model, prompted and decoded as the family is (``model=``), answers as the bank does
    assert policy.generate(["Hi"], [[0.75, 0.25]], s, model=model) == policy.generate(["Hi"], [[0.75, 0.25]], s)


def test_export_rejects_a_path_like_name(client):
    path, status = client.predict("tiny-random", "../escape", api_name="/export")
    assert path is None and status.startswith("❌") and "not allowed" in status


def test_push_without_token_or_repo_explains_what_to_do(client):
    assert "repository id" in client.predict("tiny-random", "", "", True, "", api_name="/push")
    assert "token" in client.predict("tiny-random", "", "me/model", True, "", api_name="/push")
    assert "invalid Hub repo id" in client.predict("tiny-random", "", "bad repo id!", True, "hf_x", api_name="/push")


def test_add_family_accepts_a_folder_and_rejects_a_bad_one(client, app_env, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("PARETOAPP_FAMILY_ROOT", str(tmp_path.parent))  # this run's temporary folders
    status, fam, over = client.predict(str(tmp_path), "tiny-random", [], api_name="/add_family")
    assert status.startswith("❌") and "family.json" in status
    good = app_env[2].get("tiny-random-copy").path
    status, fam, over = client.predict(str(good), "tiny-random", [], api_name="/add_family")
    assert status.startswith("✅") and over["value"] == ["tiny-random-copy"]


def test_two_sessions_keep_their_own_w(app_env):  # noqa: F811
    url = app_env[1]
    c1, c2 = gradio_client.Client(url, verbose=False), gradio_client.Client(url, verbose=False)
    c1.predict("tiny-random", *controls(1.0), [], "harmless_score", "helpful_score", api_name="/set_preference")
    c2.predict("tiny-random", *controls(0.0), [], "harmless_score", "helpful_score", api_name="/set_preference")
    j1 = c1.submit("Same question", [], "tiny-random", "", 0.0, 24, api_name="/chat")
    j2 = c2.submit("Same question", [], "tiny-random", "", 0.0, 24, api_name="/chat")
    h1, h2 = j1.result()[0], j2.result()[0]
    policy = app_env[2].get("tiny-random").policy()
    from paretoapp.generate import GenerationSettings
    s = GenerationSettings(max_new_tokens=24, overflow="truncate_left")
    msg = [[{"role": "user", "content": "Same question"}]]
    assert _assistant_text(h1) == policy.generate(msg, [[1.0, 0.0]], s)[0]
    assert _assistant_text(h2) == policy.generate(msg, [[0.0, 1.0]], s)[0]
