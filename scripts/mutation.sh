#!/usr/bin/env bash
# Mutation testing with mutmut 3: one module against that module's tests only. Not part of CI.
#
#   bash scripts/mutation.sh paretoapp/pareto.py                     # tests from the table below
#   bash scripts/mutation.sh paretoapp/trainers/peo.py tests/test_peo.py 'paretoapp.trainers.peo.x_choose_anchors*'
#
# Extra arguments starting with tests/ replace the module's tests; any other argument is a mutant-name
# pattern passed to `mutmut run` (to run part of a slow module). Runs in a temporary copy of the working
# tree (tracked and untracked, not ignored, files; the worktree gets no mutants/ folder) with one worker,
# the machine being shared, bounded by MUTATION_TIMEOUT seconds (default 3600). Prints the survivors
# and a summary line; the copy stays in $MUTATION_DIR (default /tmp/mutation-<module>) for
# `mutmut show NAME` / `mutmut results` run there. Needs `pip install mutmut` (3.x).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: bash scripts/mutation.sh paretoapp/<module>.py [tests/test_x.py ...] [mutant pattern ...]" >&2; exit 2; }
module=$1; shift
[ -f "$module" ] || { echo "$module: no such file; give a path like paretoapp/bank.py" >&2; exit 2; }
tests=(); patterns=()
for a in "$@"; do case $a in tests/*) tests+=("$a") ;; *) patterns+=("$a") ;; esac; done
if [ ${#tests[@]} -eq 0 ]; then
  case $module in
    paretoapp/bank.py) tests=(tests/test_bank.py tests/test_bank_edges.py) ;;
    paretoapp/gates.py) tests=(tests/test_gates.py tests/test_manifest.py) ;;
    paretoapp/family.py) tests=(tests/test_family.py tests/test_manifest.py) ;;
    paretoapp/pareto.py) tests=(tests/test_pareto.py) ;;
    paretoapp/conditioning.py) tests=(tests/test_family.py tests/test_rewards_in_context.py) ;;
    # the training loops: the unit tests and the trainer-level tests of the methods built on them
    paretoapp/trainers/losses.py) tests=(tests/test_losses.py tests/test_trainers_core.py tests/test_objective_adapter.py) ;;
    paretoapp/trainers/multi_objective.py) tests=(tests/test_multi_objective.py tests/test_linear_dpo.py tests/test_upo.py) ;;
    paretoapp/trainers/data.py) tests=(tests/test_trainers_core.py tests/test_objective_adapter.py tests/test_multi_objective.py) ;;
    paretoapp/trainers/loop.py) tests=(tests/test_loop.py tests/test_trainers_core.py tests/test_objective_adapter.py tests/test_panacea.py) ;;
    paretoapp/trainers/objective_adapter.py) tests=(tests/test_objective_adapter.py tests/test_rewarded_soups.py tests/test_preference_vector.py) ;;
    paretoapp/trainers/lora.py) tests=(tests/test_lora.py tests/test_objective_adapter.py tests/test_trainers_core.py tests/test_peo.py) ;;
    # a method module: its own tests, which run its trainer (tests/test_<method>.py)
    paretoapp/trainers/*.py) tests=("tests/test_$(basename "$module")") ;;
    *) echo "$module: no default tests; name them (tests/test_x.py)" >&2; exit 2 ;;
  esac
fi
name=$(basename "$module" .py)
dir=${MUTATION_DIR:-/tmp/mutation-$name}
rm -rf "$dir" && mkdir -p "$dir"
git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -x -C "$dir"
cd "$dir"
quote() { printf '"%s", ' "$@" | sed 's/, $//'; }
printf 'only_mutate = ["%s"]\npytest_add_cli_args_test_selection = [%s]\n' "$module" "$(quote "${tests[@]}")" >> pyproject.toml
echo "mutmut on $module against ${tests[*]} at $(git -C "$OLDPWD" rev-parse --short HEAD)$(git -C "$OLDPWD" diff --quiet || echo '+uncommitted') in $dir"
timeout "${MUTATION_TIMEOUT:-3600}" mutmut run --max-children 1 ${patterns[@]+"${patterns[@]}"} > run.log 2>&1 || echo "mutmut run stopped: exit $? (see $dir/run.log)"
mutmut results --all true > results.txt 2>/dev/null || true
grep -E ': (survived|no tests|timeout|suspicious)' results.txt || true
python - <<'PY'
import collections, re
counts = collections.Counter(m.group(1) for line in open("results.txt") if (m := re.search(r": (.+)$", line.strip())))
total = sum(counts.values())
print(f"{total} mutants: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
PY
# mutmut runs a mutant against the tests its stats run saw calling the mutated function; a module-scoped
# fixture (a trained family shared by a file's tests) is credited to the first test that built it only, so
# the tests that read that fixture are never run against the mutant. Re-run each survivor against every
# test named above, with the mutant switched on the way mutmut does it (MUTANT_UNDER_TEST); recheck.txt
# holds the verdicts. MUTATION_RECHECK=0 skips this.
[ "${MUTATION_RECHECK:-1}" = 1 ] || exit 0
: > recheck.txt
for mutant in $(grep -E ': survived$' results.txt | sed -E 's/^ *//; s/: survived$//'); do
  if (cd mutants && MUTANT_UNDER_TEST=$mutant timeout "${MUTATION_RECHECK_TIMEOUT:-600}" \
      python -m pytest -x -q -p no:cacheprovider "${tests[@]}" > /dev/null 2>&1); then
    echo "$mutant: survived every test" >> recheck.txt
  else
    echo "$mutant: killed on recheck" >> recheck.txt
  fi
done
killed=$(grep -c 'killed on recheck' recheck.txt || true)  # grep -c exits 1 on a count of 0 (set -e, pipefail)
echo "recheck: $killed of $(wc -l < recheck.txt) survivors killed by a test mutmut had not run (see $dir/recheck.txt)"
grep 'survived every test' recheck.txt || true
