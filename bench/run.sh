#!/usr/bin/env bash
# slaprobe performance bench (issues 8 and 19): one run on one machine prints
# every figure with its goal, the agent measured side by side with
# blackbox_exporter.
#
#   bash bench/run.sh                 # ~20 minutes after the release build
#   BENCH_QUICK=1 bash bench/run.sh   # shorter windows, for trying the script
#   BENCH_ITEMS="1 4" bash bench/run.sh   # only some items
#
# Items: 1 CPU per delivered result vs blackbox_exporter (10,000 checks at
# 60 s, and 300 at 1 s), 2 agent VmHWM (plain, `ca_file`, `resolve`, both),
# 3 collector ingest, 4 /metrics, 5 monthly report, 6 floor, 7 saturation
# (sustained probes per CPU-second, agent and blackbox_exporter).
# Knobs: BENCH_AGENT (an agent binary to measure instead of the one built
# here: A/B runs), BENCH_NO_BUILD=1, BENCH_SAT_RATES (probes/s steps of item
# 7, default "500 1000 2000 4000 8000"), BENCH_SAT_SECS (window per step),
# BENCH_AB="agent-a agent-b" (interleaved A/B runs, see that section).
#
# Not part of scripts/test.sh. Needs root for apt-get (nginx-light,
# prometheus-blackbox-exporter, hey) unless they are installed already.
# Everything runs on 127.0.0.1 / ::1: nginx on 28080 (http) and 28443 (https,
# a test CA made here with openssl, no session cache or tickets: a full
# handshake per probe), the collector on 29464, the agent's self-metrics on
# 29465, blackbox_exporter on 29115. Work files go to $BENCH_DIR (default: a
# new /tmp/slaprobe-bench.* directory, kept for inspection).
#
# Method of item 1: CPU = utime+stime from /proc/<pid>/stat over a fixed
# window. The agent runs 10,000 checks at a 60 s interval (~167 probes/s),
# pulled from a real collector; its results count only once the collector
# has acked them (slaprobe_agent_results_acked_total), so spooling, batching
# and shipping are included. blackbox_exporter is driven by `hey` at the same
# rate on /probe; its results are the /probe answers `hey` received. Both
# trust the test CA through SSL_CERT_FILE (the "system" trust store), as a
# public site's certificate would be trusted.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${BENCH_DIR:-$(mktemp -d /tmp/slaprobe-bench.XXXXXX)}
mkdir -p "$WORK"
QUICK=${BENCH_QUICK:-0}
ITEMS=" ${BENCH_ITEMS-1 2 3 4 5 6 7} " # BENCH_ITEMS="" runs none (with BENCH_AB: only the A/B)
want() { for i in "$@"; do [[ "$ITEMS" == *" $i "* ]] && return 0; done; return 1; }
if [ "$QUICK" = 1 ]; then AGENT_SECS=30; WARM=8; BB_SECS=20; INGEST_SECS=8; MEM_SECS=30; SAT_SECS=8; else AGENT_SECS=65; WARM=10; BB_SECS=50; INGEST_SECS=20; MEM_SECS=70; SAT_SECS=15; fi
SAT_SECS=${BENCH_SAT_SECS:-$SAT_SECS}
SAT_RATES=${BENCH_SAT_RATES:-500 1000 2000 4000 8000}
CHECKS=10000
RATE=$((CHECKS / 60)) # probes per second of the agent at a 60 s interval
HZ=$(getconf CLK_TCK)
PIDS=()

log() { printf '\n== %s\n' "$*" >&2; }
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    # The runs leave megabytes of spools and stores; keep only on request.
    if [ "${BENCH_KEEP:-0}" != 1 ] && [ -z "${BENCH_DIR:-}" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

# CPU seconds (user+system, all threads) of a process.
cpu_of() { awk -v hz="$HZ" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"; }
peak_rss_mb() { awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
wait_http() { # url, tries
    for _ in $(seq 1 "${2:-100}"); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
    echo "not answering: $1" >&2; return 1
}
metric() { # url name -> value (sum over series)
    curl -fsS "$1" | awk -v n="$2" '$1 ~ "^"n"({|$)" { s += $NF } END { printf "%.0f", s }'
}
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }

# ------------------------------------------------------------------ setup
need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v prometheus-blackbox-exporter >/dev/null || need+=(prometheus-blackbox-exporter)
command -v hey >/dev/null || need+=(hey)
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

BIN="$ROOT/target/release"
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    log "building --release (agent, collector, bench helper)"
    (cd "$ROOT" && cargo build --release -q -p slaprobe-agent -p slaprobe-collector -p slaprobe-bench)
fi
AGENT_BIN=${BENCH_AGENT:-$BIN/slaprobe-agent}

log "test CA and server certificate (ECDSA P-256) in $WORK"
cd "$WORK"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 30 \
    -subj "/CN=slaprobe bench CA" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key -out srv.csr -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' >srv.ext
openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 30 -extfile srv.ext 2>/dev/null

cat >nginx.conf <<EOF
user root;
worker_processes 2;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx-tmp;
    server {
        listen 127.0.0.1:28080; listen [::1]:28080;
        listen 127.0.0.1:28443 ssl; listen [::1]:28443 ssl;
        ssl_certificate $WORK/srv.pem;
        ssl_certificate_key $WORK/srv.key;
        ssl_protocols TLSv1.2 TLSv1.3;   # nginx 1.22 leaves 1.3 out by default
        ssl_session_cache off;
        ssl_session_tickets off;
        location / { default_type text/html; return 200 "<html><body>Acme shop</body></html>\n"; }
    }
}
EOF
nginx -c "$WORK/nginx.conf" -p "$WORK" &
PIDS+=($!)
wait_http http://127.0.0.1:28080/
curl -fsS --cacert ca.pem -o /dev/null https://localhost:28443/

# ------------------------------------------------------------------ item 6
floor_https="" floor_http=""
if want 6; then
log "item 6: floor (bare rustls handshake + one HTTP/1.1 exchange, blocking, one thread)"
FLOOR_SECS=$([ "$QUICK" = 1 ] && echo 3 || echo 8)
floor_https=$("$BIN/slaprobe-bench" floor https 127.0.0.1:28443 localhost ca.pem "$FLOOR_SECS")
floor_http=$("$BIN/slaprobe-bench" floor http 127.0.0.1:28080 localhost ca.pem "$FLOOR_SECS")
echo "$floor_https"; echo "$floor_http"
fi
floor_us() { local v; v=$(sed -n 's/.*cpu_us_per_exchange=\([0-9.]*\).*/\1/p' <<<"$1"); echo "${v:-0}"; }

# ------------------------------------------------------------------ items 1, 2, 7: agent
collector_conf() { # dir checks url interval extra agents... (extra: plain|ca_file|resolve|both)
    local dir=$1 n=$2 url=$3 every=$4 extra=$5
    shift 5
    mkdir -p "$dir/data"
    local more=""
    case $extra in
        ca_file) more="ca_file = \"$WORK/ca.pem\"" ;;
        resolve) more='resolve = { "localhost" = "127.0.0.1" }' ;;
        both) more="ca_file = \"$WORK/ca.pem\"\nresolve = { \"localhost\" = \"127.0.0.1\" }" ;;
    esac
    {
        # The per-agent rate guard (default 5,000/s) would throttle the load generator.
        printf '[collector]\nlisten = "127.0.0.1:29464"\ndata_dir = "%s/data"\nmax_results_per_second_per_agent = 100000000\n# Loopback only: the bench reads /metrics without a viewer token.\npublic_read = true\n\n' "$dir"
        for a in "$@"; do
            IFS=: read -r id loc tok <<<"$a"
            printf '[[agents]]\nid = "%s"\nlocation = "%s"\ntoken_sha256 = "%s"\n\n' "$id" "$loc" "$(sha "$tok")"
        done
        awk -v n="$n" -v url="$url" -v every="$every" -v more="$more" 'BEGIN { for (i = 0; i < n; i++)
            printf "[[checks]]\nname = \"c%05d\"\nkind = \"http\"\ninterval = \"%s\"\ntimeout = \"%s\"\nurl = \"%s\"\nexpect_status = [200]\n%s\n\n", i, every, (every == "1s" ? "1s" : "10s"), url, more }'
    } >"$dir/collector.toml"
}
start_collector() { # dir
    "$BIN/slaprobe-collector" run --config "$1/collector.toml" >"$1/collector.log" 2>&1 &
    COLLECTOR=$!
    PIDS+=("$COLLECTOR")
    wait_http http://127.0.0.1:29464/healthz 300
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
failing() { curl -fsS "http://127.0.0.1:29464/metrics" | awk '/^slaprobe_probe_success\{/ && $NF == 0 { n++ } END { print n + 0 }'; }

# One agent run against a fresh collector: sets AG_CPU AG_RESULTS AG_HWM
# AG_FAILING AG_SKIPPED AG_WALL. Args: tag url checks interval extra secs warm.
agent_run() {
    local tag=$1 url=$2 n=$3 every=$4 extra=$5 secs=$6 warm=$7
    local dir="$WORK/agent-$tag"
    rm -rf "$dir"
    collector_conf "$dir" "$n" "$url" "$every" "$extra" "bench-1:lab:bench-token-1"
    start_collector "$dir"
    printf '[agent]\nid = "bench-1"\nlocation = "lab"\ncollector = "http://127.0.0.1:29464"\ntoken = "bench-token-1"\nspool_dir = "%s/spool"\nmetrics_listen = "127.0.0.1:29465"\n' "$dir" >"$dir/agent.toml"
    SSL_CERT_FILE="$WORK/ca.pem" "$AGENT_BIN" run --config "$dir/agent.toml" >"$dir/agent.log" 2>&1 &
    local agent=$!
    PIDS+=("$agent")
    wait_http http://127.0.0.1:29465/metrics
    sleep "$warm"
    local m=http://127.0.0.1:29465/metrics c0 r0 s0 c1 r1 s1 t0 t1
    c0=$(cpu_of "$agent"); r0=$(metric $m slaprobe_agent_results_acked_total); s0=$(metric $m slaprobe_agent_probes_skipped_total); t0=$(date +%s.%N)
    sleep $((secs - warm))
    c1=$(cpu_of "$agent"); r1=$(metric $m slaprobe_agent_results_acked_total); s1=$(metric $m slaprobe_agent_probes_skipped_total); t1=$(date +%s.%N)
    AG_FAILING=$(failing)
    AG_HWM=$(peak_rss_mb "$agent")
    AG_CPU=$(calc %.3f "$c1 - $c0")
    AG_WALL=$(calc %.3f "$t1 - $t0")
    AG_RESULTS=$((r1 - r0))
    AG_SKIPPED=$((s1 - s0))
    echo "agent $tag: checks=$n every=$every extra=$extra window_s=$AG_WALL cpu_s=$AG_CPU results_acked=$AG_RESULTS skipped=$AG_SKIPPED failing_series=$AG_FAILING VmHWM_MB=$AG_HWM" >&2
    stop "$agent"
    stop "$COLLECTOR"
    rm -rf "$dir/data" "$dir/spool"
}

BB_UP=0 B_VERSION=-
start_bb() {
    [ "$BB_UP" = 1 ] && return 0
    printf 'modules:\n  http_2xx:\n    prober: http\n    timeout: 10s\n    http:\n      valid_status_codes: [200]\n' >"$WORK/blackbox.yml"
    SSL_CERT_FILE="$WORK/ca.pem" prometheus-blackbox-exporter --config.file="$WORK/blackbox.yml" \
        --web.listen-address=127.0.0.1:29115 --log.level=warn >"$WORK/blackbox.log" 2>&1 &
    BB=$!
    PIDS+=("$BB")
    BB_UP=1
    wait_http http://127.0.0.1:29115/metrics
    B_VERSION=$(prometheus-blackbox-exporter --version 2>&1 | head -1)
}

# blackbox_exporter driven by hey at a fixed rate: sets BB_CPU BB_RESULTS
# BB_ERRORS BB_WALL. Args: target rate secs [concurrency].
bb_run() {
    local target=$1 rate=$2 secs=$3 conc=${4:-8}
    start_bb
    local q=$(((rate + conc - 1) / conc))
    curl -fsS "http://127.0.0.1:29115/probe?target=$target&module=http_2xx" | grep -q '^probe_success 1' ||
        { echo "blackbox_exporter: probe of $target does not succeed" >&2; exit 1; }
    local c0 c1 out
    c0=$(cpu_of "$BB")
    out=$(hey -z "${secs}s" -c "$conc" -q "$q" -t 10 "http://127.0.0.1:29115/probe?target=$target&module=http_2xx")
    c1=$(cpu_of "$BB")
    BB_CPU=$(calc %.3f "$c1 - $c0")
    BB_RESULTS=$(awk '/\[200\]/ { print $2 }' <<<"$out")
    BB_RESULTS=${BB_RESULTS:-0}
    # Non-200 answers, and client-side errors (timeouts) hey lists apart.
    BB_ERRORS=$(awk '/^Status code distribution/ { s = 1; next } /^Error distribution/ { s = 0; e = 1; next }
        s && /\[[0-9]+\]/ && !/\[200\]/ { n += $2 } e && /\[[0-9]+\]/ { n += substr($1, 2) + 0 } END { print n + 0 }' <<<"$out")
    BB_WALL=$secs
    echo "blackbox $target: rate=$((q * conc))/s conc=$conc window_s=$secs cpu_s=$BB_CPU probes=$BB_RESULTS errors=$BB_ERRORS" >&2
}

per() { calc %.1f "$1 * 1000000 / ($2 > 0 ? $2 : 1)"; }
ratio() { calc %.2f "$1 / ($2 > 0 ? $2 : 1)"; }
HTTPS=https://localhost:28443/
HTTP=http://localhost:28080/

# Item 1 figures by configuration: big (10,000 at 60 s) and small (300 at 1 s).
declare -A A_US B_US A_N B_N A_FAIL HWM
if want 1; then
    log "item 1: agent and blackbox_exporter, $CHECKS checks at 60 s (~$RATE probes/s) and 300 checks at 1 s, https and http"
    for cfg in big small; do
        if [ $cfg = big ]; then n=$CHECKS every=60s rate=$RATE; else n=300 every=1s rate=300; fi
        for scheme in https http; do
            url=$HTTPS
            [ $scheme = http ] && url=$HTTP
            agent_run "$cfg-$scheme" "$url" "$n" "$every" plain "$AGENT_SECS" "$WARM"
            A_US[$cfg-$scheme]=$(per "$AG_CPU" "$AG_RESULTS")
            A_N[$cfg-$scheme]=$AG_RESULTS
            A_FAIL[$cfg-$scheme]=$AG_FAILING
            HWM[plain-$cfg-$scheme]=$AG_HWM
            bb_run "$url" "$rate" "$BB_SECS"
            B_US[$cfg-$scheme]=$(per "$BB_CPU" "$BB_RESULTS")
            B_N[$cfg-$scheme]=$BB_RESULTS
        done
    done
fi

if want 2; then
    log "item 2: agent VmHWM, $CHECKS https checks at 60 s, plain and carrying ca_file / resolve / both, ${MEM_SECS} s each"
    for extra in plain ca_file resolve both; do
        agent_run "mem-$extra" "$HTTPS" "$CHECKS" 60s "$extra" "$MEM_SECS" "$WARM"
        HWM[$extra]=$AG_HWM
    done
fi

# Item 7: raise the rate (N checks at 1 s = N probes/s) until results are
# late or dropped. A step is sustained when >= 95% of its probes were
# delivered (agent: acked by the collector; blackbox_exporter: answered to
# hey) in the window, with none skipped, failed or timed out. The figure is
# the delivered rate per CPU-second of the prober at the highest sustained
# step: probes per second per core.
declare -A SAT_RATE SAT_PER_CORE
sat_step() { # key rate delivered cpu_s wall_s bad -> returns 0 when sustained
    local got cpu ok
    got=$(calc %.1f "${3:-0} / $5")
    cpu=$(calc %.3f "$4 / $5")
    ok=$(awk -v g="$got" -v r="$2" -v b="$6" 'BEGIN { print (g >= 0.95 * r && b == 0) ? 1 : 0 }')
    echo "  $1 step $2/s: delivered $got/s using $cpu cores, lost/failed $6, sustained=$ok" >&2
    [ "$ok" = 1 ] || return 1
    SAT_RATE[$1]=$2
    SAT_PER_CORE[$1]=$(calc %.0f "$got / ($cpu > 0 ? $cpu : 1)")
}
if want 7; then
    log "item 7: saturation (steps: $SAT_RATES probes/s, ${SAT_SECS} s each)"
    for scheme in https http; do
        url=$HTTPS
        [ $scheme = http ] && url=$HTTP
        for r in $SAT_RATES; do
            agent_run "sat-$scheme-$r" "$url" "$r" 1s plain $((SAT_SECS + 6)) 6
            sat_step "agent-$scheme" "$r" "$AG_RESULTS" "$AG_CPU" "$AG_WALL" $((AG_SKIPPED + AG_FAILING)) || break
        done
        for r in $SAT_RATES; do
            bb_run "$url" "$r" "$SAT_SECS" 256
            sat_step "bb-$scheme" "$r" "$BB_RESULTS" "$BB_CPU" "$BB_WALL" "$BB_ERRORS" || break
        done
    done
fi
if [ "$BB_UP" = 1 ]; then stop "$BB"; fi

# ------------------------------------------------------------------ A/B (only with BENCH_AB)
# BENCH_AB="/path/agent-a /path/agent-b": interleaved runs A, B, A, B, ... of
# BENCH_AB_CHECKS (300) checks at BENCH_AB_EVERY (1s) for BENCH_AB_SECS (30)
# each, BENCH_AB_ROUNDS (3) per side and scheme; prints CPU per acked result
# and VmHWM of every run and the medians. Interleaving spreads the load other
# jobs put on the machine over both sides.
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
AB_LINES=()
if [ -n "${BENCH_AB:-}" ]; then
    read -r AB_A AB_B <<<"$BENCH_AB"
    AB_ROUNDS=${BENCH_AB_ROUNDS:-3}
    AB_CHECKS=${BENCH_AB_CHECKS:-300}
    AB_EVERY=${BENCH_AB_EVERY:-1s}
    AB_SECS=${BENCH_AB_SECS:-30}
    log "A/B: A=$AB_A B=$AB_B, $AB_CHECKS checks at $AB_EVERY, ${AB_SECS} s runs, $AB_ROUNDS rounds"
    for scheme in ${BENCH_AB_SCHEMES:-https http}; do
        url=$HTTPS
        [ "$scheme" = http ] && url=$HTTP
        us_a="" us_b="" mb_a="" mb_b=""
        for i in $(seq 1 "$AB_ROUNDS"); do
            for side in A B; do
                if [ $side = A ]; then AGENT_BIN=$AB_A; else AGENT_BIN=$AB_B; fi
                agent_run "ab-$scheme-$side$i" "$url" "$AB_CHECKS" "$AB_EVERY" "${BENCH_AB_EXTRA:-plain}" "$AB_SECS" 6
                us=$(per "$AG_CPU" "$AG_RESULTS")
                echo "  $scheme $side$i: $us us per result ($AG_RESULTS results, skipped $AG_SKIPPED, failing $AG_FAILING), VmHWM $AG_HWM MB" >&2
                if [ $side = A ]; then us_a="$us_a $us" mb_a="$mb_a $AG_HWM"; else us_b="$us_b $us" mb_b="$mb_b $AG_HWM"; fi
            done
        done
        ma=$(median <<<"$us_a")
        mb=$(median <<<"$us_b")
        AB_LINES+=("$scheme: A median $ma us/result (runs:$us_a; VmHWM median $(median <<<"$mb_a") MB), B median $mb us/result (runs:$us_b; VmHWM median $(median <<<"$mb_b") MB), B/A $(ratio "$mb" "$ma")x")
    done
    AGENT_BIN=${BENCH_AGENT:-$BIN/slaprobe-agent}
fi

# ------------------------------------------------------------------ item 3
ingest_max="" ingest_10k=""
if want 3; then
log "item 3: collector ingest (batches of 1,000, 4 agents on their own connections)"
INGEST_AGENTS="i1:l1:tok-i1,i2:l2:tok-i2,i3:l3:tok-i3,i4:l4:tok-i4"
collector_conf "$WORK/ingest-max" 100 http://localhost:28080/ 60s plain ${INGEST_AGENTS//,/ }
start_collector "$WORK/ingest-max"
ingest_max=$("$BIN/slaprobe-bench" ingest 127.0.0.1:29464 "$INGEST_SECS" 0 "$INGEST_AGENTS" 100)
echo "$ingest_max"
stop "$COLLECTOR"
collector_conf "$WORK/ingest-10k" 100 http://localhost:28080/ 60s plain ${INGEST_AGENTS//,/ }
start_collector "$WORK/ingest-10k"
ingest_10k=$("$BIN/slaprobe-bench" ingest 127.0.0.1:29464 "$INGEST_SECS" 10000 "$INGEST_AGENTS" 100)
echo "$ingest_10k"
stop "$COLLECTOR"
fi
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$2"; }

# ------------------------------------------------------------------ item 4
scrape=""
if want 4; then
log "item 4: /metrics with $CHECKS checks x 3 locations"
M_AGENTS="m1:ams:tok-m1,m2:nyc:tok-m2,m3:sin:tok-m3"
collector_conf "$WORK/metrics" "$CHECKS" http://localhost:28080/ 60s plain ${M_AGENTS//,/ }
start_collector "$WORK/metrics"
"$BIN/slaprobe-bench" seed 127.0.0.1:29464 "$M_AGENTS" "$CHECKS"
scrape=$("$BIN/slaprobe-bench" scrape 127.0.0.1:29464 7)
echo "$scrape"
stop "$COLLECTOR"
fi

# ------------------------------------------------------------------ item 5
sla="(not run)"
if want 5; then
log "item 5: monthly report (collector/benches/sla_month.rs)"
sla=$(cd "$ROOT" && cargo bench -q -p slaprobe-collector --bench sla_month 2>/dev/null)
echo "$sla"
fi

# ------------------------------------------------------------------ summary
v() { local x=${1:-}; echo "${x:--}"; } # a figure, or "-" when its item did not run
rat() {                                 # a b -> a/b, or "-"
    if [ -n "${1:-}" ] && [ -n "${2:-}" ] && [ "$1" != 0 ] && [ "$2" != 0 ]; then ratio "$1" "$2"; else echo -; fi
}
F_HTTPS=$(floor_us "$floor_https")
F_HTTP=$(floor_us "$floor_http")
row1() { # label key
    printf '   %-34s agent %8s us (%6s results), blackbox %8s us (%6s): %5sx   goal <= 0.25x\n' "$1" \
        "$(v "${A_US[$2]:-}")" "$(v "${A_N[$2]:-}")" "$(v "${B_US[$2]:-}")" "$(v "${B_N[$2]:-}")" "$(rat "${A_US[$2]:-}" "${B_US[$2]:-}")"
}
{
    printf '\n================ slaprobe bench (%s, %s cores, %s, load average %s)\n' "$(date -u +%Y-%m-%dT%H:%MZ)" "$(nproc)" \
        "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)" "$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "blackbox_exporter: $B_VERSION; $(nginx -v 2>&1)"
    echo "1. CPU per delivered result, agent (acked by the collector) / blackbox_exporter (/probe answers)"
    row1 "https, $CHECKS checks at 60 s:" big-https
    row1 "https, 300 checks at 1 s:" small-https
    row1 "http, $CHECKS checks at 60 s:" big-http
    row1 "http, 300 checks at 1 s:" small-http
    printf '   failing check series at the end (should be 0):'
    for k in big-https small-https big-http small-http; do printf ' %s %s' "$k" "$(v "${A_FAIL[$k]:-}")"; done
    echo
    echo "   floor / blackbox: https $(rat "$F_HTTPS" "${B_US[big-https]:-}")x, http $(rat "$F_HTTP" "${B_US[big-http]:-}")x; agent / floor: https $(rat "${A_US[big-https]:-}" "$F_HTTPS")x, http $(rat "${A_US[big-http]:-}" "$F_HTTP")x   goal agent <= 2x the floor"
    echo "2. agent VmHWM, $CHECKS https checks at 60 s, over ${MEM_SECS} s"
    echo "   plain: $(v "${HWM[plain]:-}") MB (item 1 runs over ${AGENT_SECS} s: https $(v "${HWM[plain-big-https]:-}") MB, http $(v "${HWM[plain-big-http]:-}") MB)   goal <= 30 MB"
    echo "   ca_file on each check: $(v "${HWM[ca_file]:-}") MB   goal <= 30 MB"
    echo "   resolve on each check: $(v "${HWM[resolve]:-}") MB   goal <= 30 MB"
    echo "   ca_file and resolve on each check: $(v "${HWM[both]:-}") MB   goal <= 30 MB"
    echo "3. ingest, batches of 1,000 from 4 agents: $(field results_per_s "$ingest_max") results/s stored, ack p50 $(field ack_p50_ms "$ingest_max") ms p99 $(field ack_p99_ms "$ingest_max") ms   goal >= 50,000/s"
    echo "   at a fixed 10,000 results/s: ack p50 $(field ack_p50_ms "$ingest_10k") ms p99 $(field ack_p99_ms "$ingest_10k") ms (achieved $(field results_per_s "$ingest_10k")/s)   goal p99 <= 50 ms"
    echo "4. /metrics with $CHECKS checks x 3 locations: median $(field median_ms "$scrape") ms, max $(field max_ms "$scrape") ms, $(field bytes "$scrape") bytes   goal <= 250 ms"
    echo "5. monthly report (10 checks x 3 locations x 1-minute results):"
    sed 's/^/   /' <<<"$sla"
    echo "   goal <= 2 s, <= 200 MB"
    echo "6. floor, one blocking thread: https $F_HTTPS us CPU per handshake+exchange, http $F_HTTP us"
    echo "7. saturation: checks at 1 s, rate raised through $SAT_RATES /s; sustained = >= 95% delivered, none skipped, failed or timed out"
    echo "   https: agent $(v "${SAT_PER_CORE[agent-https]:-}") probes/s per core (highest sustained step $(v "${SAT_RATE[agent-https]:-}")/s), blackbox $(v "${SAT_PER_CORE[bb-https]:-}") per core (step $(v "${SAT_RATE[bb-https]:-}")/s)   goal agent >= 4,000/s per core"
    echo "   http:  agent $(v "${SAT_PER_CORE[agent-http]:-}") probes/s per core (highest sustained step $(v "${SAT_RATE[agent-http]:-}")/s), blackbox $(v "${SAT_PER_CORE[bb-http]:-}") per core (step $(v "${SAT_RATE[bb-http]:-}")/s)"
    echo "   (when the last step of the list was sustained the prober was not saturated: add higher BENCH_SAT_RATES)"
    if [ ${#AB_LINES[@]} -gt 0 ]; then
        echo "A/B (A=$AB_A, B=$AB_B, $AB_CHECKS checks at $AB_EVERY, ${AB_SECS} s runs interleaved A,B x $AB_ROUNDS):"
        printf '   %s\n' "${AB_LINES[@]}"
    fi
    echo "work files: $WORK (BENCH_KEEP=1 keeps them)"
}
