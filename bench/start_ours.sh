#!/usr/bin/env bash
# Start the project's gateway for run_peers.sh, pinned to CPU 1 like the peers, with a provider
# pointing at the bench mock (127.0.0.1:$MOCK_PORT), a near-free price and a funded live key.
#
#   eval "export $(../shared/peers/start_ours.sh embedded|cluster [CHECKOUT])"   # prints OURS_URL/KEY/PID/MODEL
#   cluster = DATABASE_URL (fresh database on 127.0.0.1:5432) + REDIS_URL, projector inside serve.
# Stop it afterwards with: kill $OURS_PID
#
# Copied from ../shared/peers/start_ours.sh (as its README asks when our admin API changes):
# since issue 9 a key runs under 1.10's limits (250 requests/minute, 50 at once), so the
# benchmark's key is issued with limits an admin raised far above any load; the limiter
# still runs on every request.
set -euo pipefail
mode=${1:-embedded}
checkout=${2:-$(pwd)}
MOCK_PORT=${MOCK_PORT:-18080}
PORT=${OURS_PORT:-18880}
venv="$checkout/.venv"
[[ -x $venv/bin/gatewayz ]] || { echo "no $venv/bin/gatewayz: run make run (or make test) in $checkout first" >&2; exit 1; }
work=$(mktemp -d -t gwz-ours-XXXX)
data=$work/data
env_args=()
if [[ $mode == cluster ]]; then
  db=gwz_bench_$$
  psql -h 127.0.0.1 -U postgres -d postgres -qc "create database $db" >/dev/null
  redis-cli -h 127.0.0.1 -n 8 flushdb >/dev/null
  env_args=(DATABASE_URL=postgresql://postgres@127.0.0.1:5432/$db REDIS_URL=redis://127.0.0.1:6379/8
            GATEWAYZ_KEY_PEPPER=bench-pepper-0123456789abcdef0123456789 GATEWAYZ_MASTER_KEY=$(printf 'cd%.0s' {1..32}))
fi
staff=$(env "${env_args[@]}" "$venv/bin/gatewayz" admin bootstrap --data-dir "$data" 2>&1 | grep -oE 'gw_staff_[A-Za-z0-9_-]+' | head -1)
# env and taskset exec, so $! is the gateway's own pid.
env "${env_args[@]}" taskset -c 1 "$venv/bin/gatewayz" serve --host 127.0.0.1 --port "$PORT" --data-dir "$data" >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 120); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/health" && break; sleep 0.25; done
api() { curl -sf -X "$1" "http://127.0.0.1:$PORT$2" -H "Authorization: Bearer $staff" \
          -H 'Content-Type: application/json' -H "Idempotency-Key: $(cat /proc/sys/kernel/random/uuid)" -d "$3"; }
acct=$(api POST /admin/accounts '{"email":"bench@example.com","name":"Bench"}' | grep -oE 'acct_[A-Za-z0-9]+' | head -1)
limits='{"requests_per_minute":1000000000,"requests_per_hour":1000000000,"requests_per_day":1000000000,"tokens_per_minute":1000000000,"tokens_per_hour":1000000000,"tokens_per_day":1000000000,"burst":1000000000,"concurrency":1000000000}'
key=$(api POST "/admin/accounts/$acct/keys" "{\"name\":\"bench\",\"environment\":\"live\",\"rate_limits\":$limits}" | grep -oE 'gw_live_[A-Za-z0-9_-]+' | head -1)
api POST /admin/providers "{\"slug\":\"mock\",\"name\":\"Mock\",\"base_url\":\"http://127.0.0.1:$MOCK_PORT/v1\",\"credential\":\"sk-mock\",\"allow_private\":true}" >/dev/null
api PUT /admin/models/mock/mock-model/prices '{"provider":"mock","prices":{"input":"0.001","output":"0.001"},"context_length":128000}' >/dev/null
api POST /admin/credits/grants "{\"account_id\":\"$acct\",\"amount_micros\":1000000000,\"pool\":\"purchased\",\"reason\":\"benchmark credit grant\"}" >/dev/null
echo "OURS_URL=http://127.0.0.1:$PORT/v1/chat/completions OURS_KEY=$key OURS_PID=$pid OURS_MODEL=mock/mock-model OURS_WORK=$work"
