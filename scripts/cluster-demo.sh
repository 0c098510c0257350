#!/usr/bin/env bash
# The local cluster demo: N `codey serve` processes behind an nginx of its own
# (deploy/nginx), everything on loopback ports chosen free now, under a temp
# directory. Ctrl-C drains and stops it all; `kill -HUP <this script's pid>`
# restarts the servers one at a time (a rolling restart) while it runs.
# Usage: scripts/cluster-demo.sh [--servers N] [MODEL.gguf ...]
#   Without models, two tiny random-weight ones are synthesized (they answer
#   gibberish, fast: the demo is about the plumbing). Needs ./build/codey
#   (scripts/setup.sh) and Debian's nginx with libnginx-mod-http-js.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
codey=$root/build/codey
n=3
models=()
while (($#)); do
  case "$1" in
    --servers) n=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) models+=("$(realpath "$1")"); shift ;;
  esac
done
[[ -x $codey ]] || { echo "cluster-demo: build codey first (scripts/setup.sh)" >&2; exit 1; }
command -v nginx >/dev/null || { echo "cluster-demo: nginx is missing (scripts/setup.sh installs it)" >&2; exit 1; }
[[ -e /usr/lib/nginx/modules/ngx_http_js_module.so ]] || { echo "cluster-demo: libnginx-mod-http-js is missing" >&2; exit 1; }

dir=$(mktemp -d /tmp/codey-cluster.XXXXXX)
chmod 755 "$dir"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

if ((${#models[@]} == 0)); then
  echo "cluster-demo: synthesizing two tiny models in $dir"
  "$codey" synth --arch llama --n-embd 256 --n-layer 4 --n-head 4 --n-head-kv 2 --n-ff 512 --n-vocab 262 \
    --ctx 4096 -o "$dir/coder.gguf" >/dev/null
  "$codey" synth --arch llama --n-embd 64 --n-layer 2 --n-head 4 --n-head-kv 2 --n-ff 128 --n-vocab 262 \
    --ctx 4096 -o "$dir/small.gguf" >/dev/null
  models=("$dir/coder.gguf" "$dir/small.gguf")
fi
names=()
for m in "${models[@]}"; do names+=("$(basename "$m" .gguf)"); done
inner_key=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
user_key=${CODEY_DEMO_KEY:-demo-$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')}

# Every server has every model; the first is kept loaded everywhere, the
# others by the last server only (the rest load them on demand).
ports=() pids=() site_args=()
for ((i = 0; i < n; i++)); do
  ports+=("$(free_port)")
  {
    echo "memory_budget: auto"
    echo "threads: 1"
    echo "models:"
    for j in "${!models[@]}"; do
      pinned=false
      if ((j == 0 || i == n - 1)); then pinned=true; fi
      echo "  ${names[j]}: {path: ${models[j]}, parallel: 2, queue: 8, pinned: $pinned}"
    done
    echo "server: {host: 127.0.0.1, api_key: env:CODEY_DEMO_INNER_KEY, shutdown_grace: 60s}"
  } > "$dir/codey-$i.yaml"
  pinned=${names[0]}
  if ((i == n - 1)); then pinned=$(IFS=,; echo "${names[*]}"); fi
  site_args+=(--server "127.0.0.1:${ports[i]}=$pinned")
done
export CODEY_DEMO_INNER_KEY=$inner_key

start_server() {  # i
  "$codey" serve --config "$dir/codey-$1.yaml" --port "${ports[$1]}" >>"$dir/serve-$1.log" 2>&1 &
  pids[$1]=$!
}
wait_ready() {  # i
  for _ in $(seq 600); do
    curl -sf -o /dev/null "http://127.0.0.1:${ports[$1]}/ready" && return 0
    sleep 0.2
  done
  echo "cluster-demo: server $1 not ready; see $dir/serve-$1.log" >&2
  return 1
}
rolling_restart() {
  echo "cluster-demo: rolling restart"
  for ((i = 0; i < n; i++)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
    start_server "$i"
    wait_ready "$i"
    echo "cluster-demo: server $i restarted (pid ${pids[i]})"
  done
}
stop_all() {
  trap - INT TERM HUP
  echo; echo "cluster-demo: draining and stopping"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  [[ -n ${nginx_pid:-} ]] && kill -QUIT "$nginx_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  echo "cluster-demo: stopped; logs in $dir"
  exit 0
}
trap stop_all INT TERM

for ((i = 0; i < n; i++)); do start_server "$i"; done
for ((i = 0; i < n; i++)); do wait_ready "$i"; done

edge=$(free_port)
models_csv=$(IFS=,; echo "${names[*]}")
"$root/deploy/nginx/codey-site.sh" -o "$dir/nginx" --standalone --models "$models_csv" "${site_args[@]}" \
  --key "demo:$user_key" --upstream-key "$inner_key" --listen "127.0.0.1:$edge" >/dev/null
chmod 755 "$dir/nginx"
nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -e "$dir/nginx/logs/error.log" &
nginx_pid=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$edge/health" && break; sleep 0.1; done
trap rolling_restart HUP

cat <<MSG

codey cluster: $n servers (ports ${ports[*]}) behind nginx on http://127.0.0.1:$edge
  API key:   $user_key
  models:    ${names[*]}
  try:       curl -N http://127.0.0.1:$edge/v1/chat/completions -H 'Authorization: Bearer $user_key' \\
               -d '{"model":"${names[0]}","stream":true,"max_tokens":32,"messages":[{"role":"user","content":"hi"}]}'
  OpenAI:    OPENAI_BASE_URL=http://127.0.0.1:$edge/v1 OPENAI_API_KEY=$user_key
  Ollama:    OLLAMA_HOST=http://127.0.0.1:$edge (with the header Authorization: Bearer $user_key)
  who served what: tail -f $dir/nginx/logs/access.log
  rolling restart: kill -HUP $$      kill a server: kill -9 ${pids[0]}
  Ctrl-C drains and stops everything.
MSG
while true; do
  wait "$nginx_pid" 2>/dev/null && break || true  # a HUP interrupts wait; nginx exiting ends the demo
  kill -0 "$nginx_pid" 2>/dev/null || break
done
stop_all
