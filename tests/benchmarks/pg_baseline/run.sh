#!/usr/bin/env bash
# pgbench baseline for the PostgreSQL benchmark (issue 16): earn.sql (one `earn` as plain SQL)
# with 8 and 32 clients for DURATION seconds each, on a fresh copy of schema.sql + seed.sql in
# its own schema. Prints clients, TPS, mean/p50/p99 latency and failed transactions per run.
#
#   bash tests/benchmarks/pg_baseline/run.sh [--duration 20] [--members 10000] [--clients "8 32"] [--no-trigger]
#
# --no-trigger drops the purchase_gap trigger first (purchase_gaps maintained elsewhere, as issue
# 16 plans for batches). PGBENCH_MODE=simple|extended|prepared (default prepared).
# Uses the server in LOYALTYCTL_TEST_PG (postgresql://...) if set, else starts a throwaway one
# with .ci/postgres.sh (durability off, as in CI: the figures are a ceiling, not a production
# number) and stops it on exit.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
MODE=${PGBENCH_MODE:-prepared} DURATION=20 MEMBERS=10000 CLIENTS="8 32" SCHEMA=bench_earn TRIGGER=keep
while [ $# -gt 0 ]; do
  case $1 in
    --duration) DURATION=$2; shift 2 ;;
    --members) MEMBERS=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    --no-trigger) TRIGGER=drop; shift ;;
    *) echo "usage: $0 [--duration S] [--members N] [--clients \"8 32\"] [--no-trigger]" >&2; exit 2 ;;
  esac
done
if [ -z "${LOYALTYCTL_TEST_PG:-}" ]; then
  source "$ROOT/.ci/postgres.sh"
  trap pg_stop EXIT
  pg_start
fi
URL=$LOYALTYCTL_TEST_PG
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"; declare -F pg_stop >/dev/null && pg_stop' EXIT

psql "$URL" -q -v ON_ERROR_STOP=1 -v members="$MEMBERS" <<SQL >/dev/null
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS $SCHEMA CASCADE;
CREATE SCHEMA $SCHEMA;
SET search_path = $SCHEMA;
\i $HERE/schema.sql
\i $HERE/seed.sql
$([ "$TRIGGER" = drop ] && echo "DROP TRIGGER purchase_gap ON entries;")
VACUUM ANALYZE;
SQL

echo "server: $(psql "$URL" -Atc 'SHOW server_version'), fsync=$(psql "$URL" -Atc 'SHOW fsync')," \
     "synchronous_commit=$(psql "$URL" -Atc 'SHOW synchronous_commit'); $(nproc) cores; $MEMBERS members;" \
     "trigger: $TRIGGER; pgbench -M $MODE, ${DURATION}s per run; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-8s %10s %10s %10s %10s %8s\n" clients tps mean_ms p50_ms p99_ms failed
for c in $CLIENTS; do
  ( cd "$WORK" && PGOPTIONS="-csearch_path=$SCHEMA" pgbench -n -M "$MODE" -c "$c" -j 2 -T "$DURATION" \
      -D members="$MEMBERS" -f "$HERE/earn.sql" -l --log-prefix="c$c" "$URL" >"$WORK/out$c.txt" 2>&1 ) \
    || { cat "$WORK/out$c.txt" >&2; exit 1; }
  tps=$(awk '/^tps = / {print $3}' "$WORK/out$c.txt")
  failed=$(awk '/number of failed transactions/ {print $5}' "$WORK/out$c.txt")
  # Per-transaction log: column 3 is the latency in microseconds.
  cat "$WORK"/c"$c".* | awk '{print $3}' | sort -n | awk -v tps="$tps" -v c="$c" -v failed="${failed:-0}" '
      { v[NR] = $1; s += $1 }
      END { printf "%-8s %10.0f %10.2f %10.2f %10.2f %8s\n", c, tps, s / NR / 1000,
                   v[int(NR * 0.50) + 1] / 1000, v[int(NR * 0.99) + 1] / 1000, failed }'
done
psql "$URL" -q -c "SET client_min_messages = warning; DROP SCHEMA $SCHEMA CASCADE"
