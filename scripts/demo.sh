#!/usr/bin/env bash
# The tradecredit demo, end to end on embedded defaults. `make demo` runs it with .venv/bin on PATH.
#
#   simulate -> ingest -> train + promote -> materialize features -> API key -> serve
#
# Everything it writes lives in the data directory var/demo (override TRADECREDIT_DATA_DIR).
# DEMO_FIRMS (default 2000), DEMO_PORT (default 8000); DEMO_SERVE=0 stops after the setup
# and one scored request instead of keeping the service in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."

export TRADECREDIT_DATA_DIR="${TRADECREDIT_DATA_DIR:-var/demo}"
firms="${DEMO_FIRMS:-2000}"
port="${DEMO_PORT:-8000}"
base="http://127.0.0.1:${port}"
data="$TRADECREDIT_DATA_DIR"
started=$SECONDS

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# Start from a clean data directory so every figure below belongs to this run.
rm -rf "$data"
mkdir -p "$data"

step "1/6 Simulate ${firms} cross-border e-commerce firms over 36 months from 2023-01 (seed 7)"
credit simulate --firms "$firms" --start 2023-01 --months 36 --seed 7 --out "$data/world"

step "2/6 Ingest the five record files into the DuckDB record store (every row validated)"
credit ingest "$data/world"

step "3/6 Train the calibrated LightGBM PD model and the scorecard baseline; promote to champion"
credit train --truth "$data/world/truth.parquet" --promote

step "4/6 Materialize the latest features of every firm into the online store"
credit features materialize

step "5/6 Create a demo lender API key (only its hash is stored)"
lender_key=$(credit keys create --tenant demo-lender --role lender --note "make demo")
echo "lender key: $lender_key"

step "6/6 Start the scoring service on $base"
echo "(service logs: $data/service.log)"
credit serve --host 127.0.0.1 --port "$port" >"$data/service.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 1 120); do
  if curl -fs "$base/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then
    echo "the service failed to start; last lines of $data/service.log:" >&2
    tail -20 "$data/service.log" >&2; exit 1
  fi
  sleep 0.5
done
curl -fs "$base/readyz" >/dev/null || { echo "the service did not become ready" >&2; exit 1; }

firm=$(python "$(dirname "$0")/demo_firm.py")

echo
echo "A real decision for $firm (POST /v1/score):"
curl -fs -X POST "$base/v1/score" -H "X-API-Key: $lender_key" \
  -H 'Content-Type: application/json' -d "{\"firm_id\": \"$firm\"}" | python -m json.tool

bash scripts/demo_offers.sh "$firm" "$lender_key" "$base"

cat <<TXT

== Ready in $((SECONDS - started)) s
  service       $base   (interactive docs: $base/docs)
  lender key    $lender_key
  data          $data   (record store, MLflow runs in mlflow.db, audit log in service.db)
  MLflow UI     .venv/bin/mlflow ui --backend-store-uri sqlite:///$(cd "$data" && pwd)/mlflow.db
TXT

if [ "${DEMO_SERVE:-1}" = 0 ]; then
  exit 0
fi
echo
echo "Serving until you press Ctrl-C (logs: $data/service.log)."
wait "$server"
