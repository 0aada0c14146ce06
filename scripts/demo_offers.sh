#!/usr/bin/env bash
# The end of `make demo`: a platform key, a working seller link and two curl examples.
#
#   scripts/demo_offers.sh FIRM_ID LENDER_KEY [BASE_URL]
#
# FIRM_ID "auto" picks the firm with the most platform settlements in the record store.
#
# Run it with the demo's TRADECREDIT_DATA_DIR: the link is signed with the secret kept there
# (the one the service verifies with) and stays valid for 15 minutes from now.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 FIRM_ID LENDER_KEY [BASE_URL]" >&2
  exit 2
fi
firm="$1"
lender_key="$2"
base="${3:-http://127.0.0.1:8000}"

if [ "$firm" = auto ]; then
  firm=$(python "$(dirname "$0")/demo_firm.py")
  if [ -z "$firm" ]; then
    echo "no firm with platform settlements in the record store" >&2
    exit 1
  fi
fi

platform_key="${DEMO_PLATFORM_KEY:-$(credit keys create --tenant demo-platform --role platform --note "make demo" 2>/dev/null)}"
link=$(credit offers --firm "$firm" --seller-link --tenant demo-platform --base-url "$base")

cat <<TXT

== Financing offers
Seller page of $firm (opens without an API key for 15 minutes; phone-friendly):
  $link

Score it (lender key):
  curl -s -X POST $base/v1/score -H "X-API-Key: $lender_key" -H 'Content-Type: application/json' -d '{"firm_id": "$firm"}'

Its offers under the default policy (lender or platform key):
  curl -s $base/v1/firms/$firm/offers -H "X-API-Key: $lender_key"

What would move it to the next grade, or to grade B (lender or platform key):
  curl -s "$base/v1/firms/$firm/recourse?target_grade=B" -H "X-API-Key: $lender_key"

A new seller link, as a platform asks for one (platform key, shown once):
  curl -s -X POST $base/v1/firms/$firm/seller-link -H "X-API-Key: $platform_key"
TXT
