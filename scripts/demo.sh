#!/usr/bin/env bash
# The tradecredit demo, end to end on embedded defaults. `make demo` runs it with .venv/bin on PATH.
#
#   simulate -> ingest -> train + promote -> materialize features -> API keys -> serve ->
#   providers push a seller's records, a lender asks for consent, the seller agrees, scores ->
#   decisions and reviews -> webhooks and portfolio monitoring
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

step "1/9 Simulate ${firms} cross-border e-commerce firms over 36 months from 2023-01 (seed 7)"
credit simulate --firms "$firms" --start 2023-01 --months 36 --seed 7 --out "$data/world"

step "2/9 Ingest the five record files into the DuckDB record store (every row validated)"
credit ingest "$data/world"
echo
echo "-- A seller's own exports, read as they are (docs/adapters.md): Amazon and Stripe for F000001"
credit ingest samples/adapters/amazon-settlement/settlement_2024-03-15.txt --firm F000001 \
  --source demo-market --fx samples/adapters/fx.csv
credit ingest samples/adapters/stripe-balance/balance_history.csv --firm F000001 \
  --source demo-market --fx samples/adapters/fx.csv

step "3/9 Train the calibrated LightGBM PD model and the scorecard baseline; promote to champion"
credit train --truth "$data/world/truth.parquet" --promote

step "4/9 Materialize the latest features of every firm into the online store"
credit features materialize

step "5/9 Create API keys: two lenders, three platforms, two reviewers (only their hashes are stored)"
lender_key=$(credit keys create --tenant demo-lender --role lender --note "make demo")
echo "lender key (demo-lender): $lender_key"
DEMO_LENDER_KEY="$lender_key"
DEMO_OTHER_KEY=$(credit keys create --tenant other-lender --role lender --note "make demo")
DEMO_MARKET_KEY=$(credit keys create --tenant demo-market --role platform --note "make demo")
DEMO_CUSTOMS_KEY=$(credit keys create --tenant demo-customs --role platform --note "make demo")
DEMO_PLATFORM_KEY=$(credit keys create --tenant demo-platform --role platform --note "make demo")
DEMO_ANA_KEY=$(credit keys create --tenant demo-lender --role reviewer --holder "Ana Reviewer" --note "make demo")
DEMO_BEN_KEY=$(credit keys create --tenant demo-lender --role reviewer --holder "Ben Second" --note "make demo")
export DEMO_LENDER_KEY DEMO_OTHER_KEY DEMO_MARKET_KEY DEMO_CUSTOMS_KEY DEMO_PLATFORM_KEY \
  DEMO_ANA_KEY DEMO_BEN_KEY
echo "and keys for other-lender, demo-market, demo-customs (providers), demo-platform and two"
echo "reviewers at demo-lender (Ana Reviewer, Ben Second)"

step "6/9 Start the scoring service on $base"
echo "(service logs: $data/service.log)"
# the demo's webhook receiver listens on loopback: allowed for development only
TRADECREDIT_WEBHOOKS_ALLOW_LOOPBACK=true \
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

step "7/9 Three parties: providers push a seller's records, a lender asks, the seller agrees (docs/consent.md)"
DEMO_DECISION_FILE="$data/story_decision" python "$(dirname "$0")/demo_story.py" story "$base"

echo
echo "-- The operator replays demo-lender's decision: credit decisions replay $(cat "$data/story_decision")"
credit decisions replay "$(cat "$data/story_decision")" >/dev/null

step "8/9 Approve, decline or refer; the review queue with four eyes; an adverse-action notice (docs/decisioning.md)"
DEMO_REVIEW_FILE="$data/review_decision" python "$(dirname "$0")/demo_story.py" decisions "$base"

firm=$(python "$(dirname "$0")/demo_firm.py")

echo
echo "The showcase firm $firm: its seller consents to demo-lender and demo-platform"
python "$(dirname "$0")/demo_story.py" consent "$base" "$firm" DEMO_LENDER_KEY DEMO_PLATFORM_KEY

echo
echo "A real decision for $firm (POST /v1/score):"
curl -fs -X POST "$base/v1/score" -H "X-API-Key: $lender_key" \
  -H 'Content-Type: application/json' -d "{\"firm_id\": \"$firm\"}" | python -m json.tool

echo
echo "What would move $firm to a better grade (GET /v1/firms/$firm/recourse, docs/recourse.md):"
curl -fs "$base/v1/firms/$firm/recourse" -H "X-API-Key: $lender_key" | python scripts/demo_recourse.py

bash scripts/demo_offers.sh "$firm" "$lender_key" "$base"

step "9/9 Events and monitoring: signed webhooks, a watched firm gets worse (docs/webhooks.md, docs/portfolio.md)"
python "$(dirname "$0")/demo_story.py" events "$base" "$firm"

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
