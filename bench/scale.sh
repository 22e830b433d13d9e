#!/usr/bin/env bash
# slaprobe scale bench (issue 12): where the SLA truth lives, at the scale users have.
#
#   bash bench/scale.sh              # both scenarios (~15 minutes after the release build)
#   SCALE_ONLY=month bash bench/scale.sh
#   SCALE_ONLY=wide bash bench/scale.sh
#   SCALE_COMPACT=1 bash bench/scale.sh   # also compact the month and measure it
#
# Scenario "month": 20 sites = 60 checks x 3 locations, a result every 60 s
# for all of November 2026 (7.78 M results), 20 contracts of 3 checks. The
# collector runs as of 2026-11-30T23:50Z (libfaketime), so November is its
# current month: the live figures are month to date.
# Scenario "wide": 1,000 sites = 3,000 checks x 3 locations, 60 s, two days
# (2026-11-01..03, 25.9 M results; WIDE_HOURS=12: two half days), 1,000
# contracts; the month-end memory is projected from the growth measured
# over the second period.
#
# Prints, per scenario: ingest rate, collector RSS at the end, restart until
# /readyz, bytes per result on disk, and the time and peak memory of one
# monthly report (the offline CLI). Everything runs on 127.0.0.1:19474.
# Not part of scripts/test.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${BENCH_DIR:-$(mktemp -d /tmp/slaprobe-scale.XXXXXX)}
ONLY=${SCALE_ONLY:-}
# SCALE_COMPACT=1: compact as soon as the ledger has the results and wait for
# it (a month takes ~20 minutes of compaction on this box); else the default
# horizon (1 h) leaves the month uncompacted during the run.
COMPACT=${SCALE_COMPACT:-0}
if [ "$COMPACT" = 1 ]; then COMPACT_AFTER=1s; else COMPACT_AFTER=1h; fi
PORT=${SCALE_PORT:-19474}
ADDR=127.0.0.1:$PORT
FAKE=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -1)
[ -n "$FAKE" ] || { apt-get install -y -qq faketime >/dev/null; FAKE=$(ls /usr/lib/*/faketime/libfaketime.so.1 | head -1); }
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null
# gdb: to call malloc_trim(0) in the collector before the wide scenario's
# memory readings (see live_mb).
command -v gdb >/dev/null || apt-get install -y -qq gdb >/dev/null

cd "$ROOT"
cargo build --release -q -p slaprobe-collector -p slaprobe-bench
COL=$ROOT/target/release/slaprobe-collector
BENCH=$ROOT/target/release/slaprobe-bench
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT

log() { printf '\n== %s\n' "$*" >&2; }
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
rss_mb() { awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
# The collector's RSS once glibc has handed back the free heap it keeps in
# its arenas (malloc_trim(0)): the memory the collector really holds. Plain
# RSS also counts freed memory glibc has not returned yet, which comes and
# goes with the ingest load (66 MB of 234 MB at 1,000 sites after 6 h), so
# its growth over hours says little about the month's end.
live_mb() { gdb -p "$1" -batch -ex 'call (int)malloc_trim(0)' >/dev/null 2>&1; rss_mb "$1"; }
hwm_mb() { awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
# Seconds between the real clock and AT (for FAKETIME=+N).
offset_to() { echo $(( $(date -d "$1" +%s) - $(date +%s) )); }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

config() { # dir nchecks ncontracts
    local dir=$1 n=$2 k=$3 per=$(( $2 / $3 ))
    {
        printf '[collector]\nlisten = "%s"\ndata_dir = "%s/data"\nmax_result_age = "60d"\nmax_results_per_second_per_agent = 10000000\npublic_read = true\ncompact_after = "%s"\n' "$ADDR" "$dir" "$COMPACT_AFTER"
        for a in ams nyc sgp; do
            printf '[[agents]]\nid = "b-%s"\nlocation = "%s"\ntoken_sha256 = "%s"\n' "$a" "$a" "$(sha "tok-$a-0123456789")"
        done
        for i in $(seq 0 $((n - 1))); do
            printf '[[checks]]\nname = "c%05d"\nkind = "http"\nurl = "https://c%05d.bench.example/"\ninterval = "60s"\n' "$i" "$i"
        done
        for j in $(seq 0 $((k - 1))); do
            printf '[[contracts]]\nname = "s%04d"\nvendor = "Vendor %d"\nchecks = [' "$j" "$((j % 7))"
            for i in $(seq $((j * per)) $((j * per + per - 1))); do printf '"c%05d",' "$i"; done
            printf ']\ntimezone = "UTC"\nslot = "60s"\nquorum = 2\nobjectives = [ { kind = "availability", target = 99.9 }, { kind = "latency", phase = "processing", percentile = 95, max = "500ms" } ]\ncredits = [ { below = 99.9, percent = 10 } ]\n' 
        done
    } > "$dir/collector.toml"
}

start() { # dir offset
    LD_PRELOAD=$FAKE FAKETIME=$(printf "%+d" "$2") FAKETIME_DONT_FAKE_MONOTONIC=1 SLAPROBE_LOG=warn \
        "$COL" run --config "$1/collector.toml" >> "$1/collector.log" 2>&1 &
    PID=$!
    local t0; t0=$(date +%s.%N)
    until curl -fsS -o /dev/null "http://$ADDR/readyz" 2>/dev/null; do sleep 0.05; done
    READY_S=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
}

stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=; }

caught_up() { # waits until the ledger's cursor stops moving; prints seconds waited
    local t0 last=-1 cur same=0; t0=$(date +%s)
    while :; do
        cur=$(curl -fsS "http://$ADDR/api/v1/contracts" | json 'd["ledger"]["cursor"]')
        if [ "$cur" = "$last" ]; then same=$((same + 1)); else same=0; fi
        [ "$same" -ge 2 ] && break
        last=$cur; sleep 3
    done
    echo $(( $(date +%s) - t0 - 6 ))
}

disk_per_result() { # dir results
    local bytes; bytes=$(du -sb "$1/data" | cut -f1)
    awk -v b="$bytes" -v n="$2" 'BEGIN { printf "%.1f B/result (%.2f GB for %d results)", b / n, b / 1e9, n }'
}

compacted() { # waits until (almost) every result left the raw table; prints seconds waited
    local t0 n; t0=$(date +%s)
    while :; do
        n=$(sqlite3 -readonly "$1/data/slaprobe.db" "SELECT count(*) FROM results" 2>/dev/null || echo busy)
        [ "$n" != busy ] && [ "$n" -lt 20000 ] && break
        [ $(( $(date +%s) - t0 )) -gt 1800 ] && { echo "(gave up after 30 min, $n raw rows left) "; break; }
        sleep 10
    done
    echo $(( $(date +%s) - t0 ))
}

stored() { curl -fsS "http://$ADDR/api/v1/agents" | json 'sum(a["results"] for a in d)'; }

AGENTS="b-ams:ams:tok-ams-0123456789,b-nyc:nyc:tok-nyc-0123456789,b-sgp:sgp:tok-sgp-0123456789"

if [ -z "$ONLY" ] || [ "$ONLY" = month ]; then
    D=$WORK/month; mkdir -p "$D"; config "$D" 60 20
    OFF=$(offset_to 2026-11-30T23:50:00Z)
    log "month: 60 checks x 3 locations, November 2026 at 60 s, 20 contracts"
    start "$D" "$OFF"; echo "empty collector: RSS $(rss_mb "$PID") MB, ready in ${READY_S} s"
    "$BENCH" month "$ADDR" "$AGENTS" 60 2026-11-01T00:00:00Z 2026-11-30T23:49:00Z 60
    echo "ledger caught up $(caught_up) s after the last ack"
    N=$(stored)
    echo "collector after the month: RSS $(rss_mb "$PID") MB, peak $(hwm_mb "$PID") MB"
    echo "on disk before compaction: $(disk_per_result "$D" "$N")"
    if [ "$COMPACT" = 1 ]; then
        echo "compaction caught up after $(compacted "$D") s"
        echo "on disk once compacted: $(disk_per_result "$D" "$N")"
    fi
    curl -fsS "http://$ADDR/api/v1/contracts" > "$D/live.json"
    stop
    start "$D" "$OFF"; echo "restart: /readyz after ${READY_S} s (RSS $(rss_mb "$PID") MB)"
    curl -fsS "http://$ADDR/api/v1/contracts" > "$D/live-after-restart.json"
    stop
    LD_PRELOAD=$FAKE FAKETIME=$(printf "%+d" "$OFF") /usr/bin/time -f "%e %M" -o "$D/report.time" \
        "$COL" report --config "$D/collector.toml" --contract s0007 --month 2026-11 --format json --output "$D/report.json"
    read -r secs kb < "$D/report.time"
    echo "monthly report (offline CLI, 1 contract, $(json 'd["evidence"]["results"]' < "$D/report.json") results): ${secs} s, peak $((kb / 1024)) MB"
    python3 - "$D" <<'PY'
import json, sys
d = sys.argv[1]
live = {c["name"]: c for c in json.load(open(f"{d}/live.json"))["contracts"]}
again = {c["name"]: c for c in json.load(open(f"{d}/live-after-restart.json"))["contracts"]}
rep = json.load(open(f"{d}/report.json"))
c = live["s0007"]
same = all(c[k] == rep[k] for k in ("slots", "availability_percent", "downtime_seconds", "credit_percent"))
print(f"live s0007 vs offline report: slots/availability/downtime/credit {'equal' if same else 'DIFFER'}; "
      f"p95 live {c['objectives'][1]['attained']} vs report {rep['objectives'][1]['attained']}")
print(f"after restart the live figures are {'the same' if live == again else 'DIFFERENT'}")
PY
fi

if [ -z "$ONLY" ] || [ "$ONLY" = wide ]; then
    # WIDE_HOURS: the length of each of the two measured periods (default a
    # day each; 12 halves the run and its ~14 GB of uncompacted store).
    H=${WIDE_HOURS:-24}
    D=$WORK/wide; mkdir -p "$D"; config "$D" 3000 1000
    T1=$(date -u -d "2026-11-01T00:00:00Z + $H hours" +%Y-%m-%dT%H:%M:%SZ)
    T2=$(date -u -d "2026-11-01T00:00:00Z + $((2 * H)) hours" +%Y-%m-%dT%H:%M:%SZ)
    OFF=$(offset_to "$T2")
    log "wide: 3,000 checks x 3 locations, 2 x $H h at 60 s, 1,000 contracts (as of $T2)"
    start "$D" "$OFF"; echo "empty collector: RSS $(rss_mb "$PID") MB, ready in ${READY_S} s"
    "$BENCH" month "$ADDR" "$AGENTS" 3000 2026-11-01T00:00:00Z "$T1" 60
    caught_up > /dev/null; R1_RAW=$(rss_mb "$PID"); R1=$(live_mb "$PID")
    "$BENCH" month "$ADDR" "$AGENTS" 3000 "$T1" "$(date -u -d "$T2 - 1 minute" +%Y-%m-%dT%H:%M:%SZ)" 60 | sed 's/^/period 2: /'
    echo "ledger caught up $(caught_up) s after the last ack"
    R2_RAW=$(rss_mb "$PID"); R2=$(live_mb "$PID"); N=$(stored)
    echo "collector RSS after $H h: $R1_RAW MB, after $((2 * H)) h: $R2_RAW MB, peak $(hwm_mb "$PID") MB"
    echo "held (RSS after malloc_trim) after $H h: $R1 MB, after $((2 * H)) h: $R2 MB"
    # Every month structure is made whole when the month starts (a byte per
    # slot, the sketches' octave pages): what still grows is what the second
    # period added; carried on linearly to the 30th day, an upper bound.
    awk -v a="$R1" -v b="$R2" -v h="$H" 'BEGIN { n = (720 - 2 * h) / h; g = b - a; if (g < 0) g = 0; printf "month-end projection (held after %d h + %.0f x its growth over the second %d h): %.0f MB\n", 2 * h, n, h, b + n * g }'
    echo "on disk before compaction: $(disk_per_result "$D" "$N")"
    curl -fsS -o /dev/null -w "GET /api/v1/contracts (1,000 contracts): %{time_total} s, %{size_download} bytes\n" "http://$ADDR/api/v1/contracts"
    curl -fsS -o /dev/null -w "GET /metrics: %{time_total} s, %{size_download} bytes\n" "http://$ADDR/metrics"
    stop
    start "$D" "$OFF"; echo "restart: /readyz after ${READY_S} s (RSS $(rss_mb "$PID") MB)"
    stop
fi
echo "work files: $WORK"
