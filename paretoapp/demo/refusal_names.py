"""Which methods' demo families come from the refusal mix, in one place: the refusal build
(:mod:`paretoapp.demo.refusal_family`) makes them, and the "demo" preset (:mod:`paretoapp.demo.presets`) no longer
builds their DPO-era families. A module of its own, so that neither of the two imports the other."""

FIRST = "rewarded_soups"  # the family the app opens on
# the methods in assets/, which `paretoapp demo` builds (every one of refusal_family.RECIPES is built when asked):
# Rewards-in-Context and Panacea miss the bounds (docs/demo.md, "... on the refusal mix"), experiments; these three
# replaced their DPO-era families, which missed the ood bounds, in the assets budget
COMMITTED = (FIRST, "peo", "linear_dpo")


def family_name(method: str) -> str:
    return f"demo-refusal-mix-{method.replace('_', '-')}"
