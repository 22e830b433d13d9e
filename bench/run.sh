#!/usr/bin/env bash
# slaprobe performance bench (issue 8): one run on one machine prints items 1-6
# with their targets, the agent measured side by side with blackbox_exporter.
#
#   bash bench/run.sh                 # ~7 minutes after the release build
#   BENCH_QUICK=1 bash bench/run.sh   # shorter windows, for trying the script
#   BENCH_ITEMS="1 4" bash bench/run.sh   # only some items (1 and 2 share the agent runs)
#
# Not part of scripts/test.sh. Needs root for apt-get (nginx-light,
# prometheus-blackbox-exporter, hey) unless they are installed already.
# Everything runs on 127.0.0.1 / ::1: nginx on 18080 (http) and 18443 (https,
# a test CA made here with openssl, no session cache or tickets: a full
# handshake per probe), the collector on 19464, the agent's self-metrics on
# 19465, blackbox_exporter on 19115. Work files go to $BENCH_DIR (default: a
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
ITEMS=" ${BENCH_ITEMS:-1 2 3 4 5 6} "
want() { for i in "$@"; do [[ "$ITEMS" == *" $i "* ]] && return 0; done; return 1; }
if [ "$QUICK" = 1 ]; then AGENT_SECS=30; WARM=8; BB_SECS=20; INGEST_SECS=8; else AGENT_SECS=65; WARM=10; BB_SECS=50; INGEST_SECS=20; fi
CHECKS=10000
RATE=$((CHECKS / 60)) # probes per second of the agent at a 60 s interval
HZ=$(getconf CLK_TCK)
PIDS=()

log() { printf '\n== %s\n' "$*" >&2; }
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
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

log "building --release (agent, collector, bench helper)"
(cd "$ROOT" && cargo build --release -q -p slaprobe-agent -p slaprobe-collector -p slaprobe-bench)
BIN="$ROOT/target/release"

log "test CA and server certificate (ECDSA P-256) in $WORK"
cd "$WORK"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 30 \
    -subj "/CN=slaprobe bench CA" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key -out srv.csr -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' >srv.ext
openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 30 -extfile srv.ext 2>/dev/null

cat >nginx.conf <<EOF
user root;
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx-tmp;
    server {
        listen 127.0.0.1:18080; listen [::1]:18080;
        listen 127.0.0.1:18443 ssl; listen [::1]:18443 ssl;
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
wait_http http://127.0.0.1:18080/
curl -fsS --cacert ca.pem -o /dev/null https://localhost:18443/

# ------------------------------------------------------------------ item 6
floor_https="" floor_http=""
if want 6; then
log "item 6: floor (bare rustls handshake + one HTTP/1.1 exchange, blocking, one thread)"
FLOOR_SECS=$([ "$QUICK" = 1 ] && echo 3 || echo 8)
floor_https=$("$BIN/slaprobe-bench" floor https 127.0.0.1:18443 localhost ca.pem "$FLOOR_SECS")
floor_http=$("$BIN/slaprobe-bench" floor http 127.0.0.1:18080 localhost ca.pem "$FLOOR_SECS")
echo "$floor_https"; echo "$floor_http"
fi
floor_us() { local v; v=$(sed -n 's/.*cpu_us_per_exchange=\([0-9.]*\).*/\1/p' <<<"$1"); echo "${v:-0}"; }

# ------------------------------------------------------------------ items 1, 2: agent
collector_conf() { # dir, checks, url, agents...
    local dir=$1 n=$2 url=$3
    shift 3
    mkdir -p "$dir/data"
    {
        # The per-agent rate guard (default 5,000/s) would throttle the load generator.
        printf '[collector]\nlisten = "127.0.0.1:19464"\ndata_dir = "%s/data"\nmax_results_per_second_per_agent = 100000000\n\n' "$dir"
        for a in "$@"; do
            IFS=: read -r id loc tok <<<"$a"
            printf '[[agents]]\nid = "%s"\nlocation = "%s"\ntoken_sha256 = "%s"\n\n' "$id" "$loc" "$(sha "$tok")"
        done
        awk -v n="$n" -v url="$url" 'BEGIN { for (i = 0; i < n; i++)
            printf "[[checks]]\nname = \"c%05d\"\nkind = \"http\"\ninterval = \"60s\"\ntimeout = \"10s\"\nurl = \"%s\"\nexpect_status = [200]\n\n", i, url }'
    } >"$dir/collector.toml"
}
start_collector() { # dir
    "$BIN/slaprobe-collector" run --config "$1/collector.toml" >"$1/collector.log" 2>&1 &
    COLLECTOR=$!
    PIDS+=("$COLLECTOR")
    wait_http http://127.0.0.1:19464/healthz 300
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

agent_run() { # scheme url -> sets AG_CPU AG_RESULTS AG_HWM
    local scheme=$1 url=$2 dir="$WORK/agent-$1"
    collector_conf "$dir" "$CHECKS" "$url" "bench-1:lab:bench-token-1"
    start_collector "$dir"
    cat >"$dir/agent.toml" <<EOF
[agent]
id = "bench-1"
location = "lab"
collector = "http://127.0.0.1:19464"
token = "bench-token-1"
spool_dir = "$dir/spool"
metrics_listen = "127.0.0.1:19465"
EOF
    SSL_CERT_FILE="$WORK/ca.pem" "$BIN/slaprobe-agent" run --config "$dir/agent.toml" >"$dir/agent.log" 2>&1 &
    local agent=$!
    PIDS+=("$agent")
    wait_http http://127.0.0.1:19465/metrics
    sleep "$WARM"
    local c0 r0 c1 r1 f0 f1
    c0=$(cpu_of "$agent"); r0=$(metric http://127.0.0.1:19465/metrics slaprobe_agent_results_acked_total)
    f0=$(curl -fsS "http://127.0.0.1:19464/metrics" | awk '/^slaprobe_probe_success\{/ && $NF == 0 { n++ } END { print n + 0 }')
    sleep $((AGENT_SECS - WARM))
    c1=$(cpu_of "$agent"); r1=$(metric http://127.0.0.1:19465/metrics slaprobe_agent_results_acked_total)
    f1=$(curl -fsS "http://127.0.0.1:19464/metrics" | awk '/^slaprobe_probe_success\{/ && $NF == 0 { n++ } END { print n + 0 }')
    AG_HWM=$(peak_rss_mb "$agent")
    AG_CPU=$(calc %.3f "$c1 - $c0")
    AG_RESULTS=$((r1 - r0))
    AG_FAILING=$f1
    echo "agent $scheme: checks=$CHECKS window_s=$((AGENT_SECS - WARM)) cpu_s=$AG_CPU results_acked=$AG_RESULTS failing_series=$AG_FAILING VmHWM_MB=$AG_HWM" >&2
    stop "$agent"
    stop "$COLLECTOR"
}

bb_run() { # module target -> sets BB_CPU BB_RESULTS
    local module=$1 target=$2
    local q=$(( (RATE + 7) / 8 ))
    curl -fsS "http://127.0.0.1:19115/probe?target=$target&module=$module" | grep -q '^probe_success 1' \
        || { echo "blackbox_exporter: $module probe of $target does not succeed" >&2; exit 1; }
    local c0 c1 out
    c0=$(cpu_of "$BB")
    out=$(hey -z "${BB_SECS}s" -c 8 -q "$q" "http://127.0.0.1:19115/probe?target=$target&module=$module")
    c1=$(cpu_of "$BB")
    BB_CPU=$(calc %.3f "$c1 - $c0")
    BB_RESULTS=$(awk '/\[200\]/ { print $2 }' <<<"$out")
    BB_RESULTS=${BB_RESULTS:-0}
    echo "blackbox $module: rate=$((q * 8))/s window_s=$BB_SECS cpu_s=$BB_CPU probes=$BB_RESULTS" >&2
}

A_HTTPS_CPU=0 A_HTTPS_N=0 A_HTTPS_HWM=- A_HTTPS_FAIL=- A_HTTP_CPU=0 A_HTTP_N=0 A_HTTP_HWM=- A_HTTP_FAIL=-
B_HTTPS_CPU=0 B_HTTPS_N=0 B_HTTP_CPU=0 B_HTTP_N=0 B_VERSION=-
if want 1 2; then
log "items 1, 2: slaprobe agent, $CHECKS checks at 60 s (~$RATE probes/s), https then http"
agent_run https https://localhost:18443/
A_HTTPS_CPU=$AG_CPU A_HTTPS_N=$AG_RESULTS A_HTTPS_HWM=$AG_HWM A_HTTPS_FAIL=$AG_FAILING
agent_run http http://localhost:18080/
A_HTTP_CPU=$AG_CPU A_HTTP_N=$AG_RESULTS A_HTTP_HWM=$AG_HWM A_HTTP_FAIL=$AG_FAILING
fi

if want 1; then

log "item 1: blackbox_exporter driven by hey at ~$RATE probes/s"
cat >"$WORK/blackbox.yml" <<EOF
modules:
  http_2xx:
    prober: http
    timeout: 10s
    http:
      valid_status_codes: [200]
EOF
SSL_CERT_FILE="$WORK/ca.pem" prometheus-blackbox-exporter --config.file="$WORK/blackbox.yml" \
    --web.listen-address=127.0.0.1:19115 --log.level=warn >"$WORK/blackbox.log" 2>&1 &
BB=$!
PIDS+=("$BB")
wait_http http://127.0.0.1:19115/metrics
bb_run http_2xx https://localhost:18443/
B_HTTPS_CPU=$BB_CPU B_HTTPS_N=$BB_RESULTS
bb_run http_2xx http://localhost:18080/
B_HTTP_CPU=$BB_CPU B_HTTP_N=$BB_RESULTS
B_VERSION=$(prometheus-blackbox-exporter --version 2>&1 | head -1)
stop "$BB"
fi

# ------------------------------------------------------------------ item 3
ingest_max="" ingest_10k=""
if want 3; then
log "item 3: collector ingest (batches of 1,000, 4 agents on their own connections)"
INGEST_AGENTS="i1:l1:tok-i1,i2:l2:tok-i2,i3:l3:tok-i3,i4:l4:tok-i4"
collector_conf "$WORK/ingest-max" 100 http://localhost:18080/ ${INGEST_AGENTS//,/ }
start_collector "$WORK/ingest-max"
ingest_max=$("$BIN/slaprobe-bench" ingest 127.0.0.1:19464 "$INGEST_SECS" 0 "$INGEST_AGENTS" 100)
echo "$ingest_max"
stop "$COLLECTOR"
collector_conf "$WORK/ingest-10k" 100 http://localhost:18080/ ${INGEST_AGENTS//,/ }
start_collector "$WORK/ingest-10k"
ingest_10k=$("$BIN/slaprobe-bench" ingest 127.0.0.1:19464 "$INGEST_SECS" 10000 "$INGEST_AGENTS" 100)
echo "$ingest_10k"
stop "$COLLECTOR"
fi
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$2"; }

# ------------------------------------------------------------------ item 4
scrape=""
if want 4; then
log "item 4: /metrics with $CHECKS checks x 3 locations"
M_AGENTS="m1:ams:tok-m1,m2:nyc:tok-m2,m3:sin:tok-m3"
collector_conf "$WORK/metrics" "$CHECKS" http://localhost:18080/ ${M_AGENTS//,/ }
start_collector "$WORK/metrics"
"$BIN/slaprobe-bench" seed 127.0.0.1:19464 "$M_AGENTS" "$CHECKS"
scrape=$("$BIN/slaprobe-bench" scrape 127.0.0.1:19464 7)
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
per() { calc %.1f "$1 * 1000000 / ($2 > 0 ? $2 : 1)"; }
A_HTTPS_US=$(per "$A_HTTPS_CPU" "$A_HTTPS_N"); B_HTTPS_US=$(per "$B_HTTPS_CPU" "$B_HTTPS_N")
A_HTTP_US=$(per "$A_HTTP_CPU" "$A_HTTP_N"); B_HTTP_US=$(per "$B_HTTP_CPU" "$B_HTTP_N")
ratio() { calc %.2f "$1 / ($2 > 0 ? $2 : 1)"; }
cat <<EOF

================ slaprobe bench ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo))
blackbox_exporter: $B_VERSION; $(nginx -v 2>&1)
1. CPU per delivered probe result (agent: acked by the collector; blackbox_exporter: /probe answers)
   https  agent ${A_HTTPS_US} us (${A_HTTPS_N} results)  blackbox ${B_HTTPS_US} us (${B_HTTPS_N})  ratio $(ratio "$A_HTTPS_US" "$B_HTTPS_US")x   target <= 0.5x
   http   agent ${A_HTTP_US} us (${A_HTTP_N} results)  blackbox ${B_HTTP_US} us (${B_HTTP_N})  ratio $(ratio "$A_HTTP_US" "$B_HTTP_US")x   target <= 0.5x
   (failing check series at the end: https ${A_HTTPS_FAIL}, http ${A_HTTP_FAIL}; should be 0)
2. agent peak RSS (VmHWM), $CHECKS checks at 60 s, ${AGENT_SECS} s run: https ${A_HTTPS_HWM} MB, http ${A_HTTP_HWM} MB   target <= 30 MB
3. ingest, batches of 1,000 from 4 agents: $(field results_per_s "$ingest_max") results/s stored, ack p50 $(field ack_p50_ms "$ingest_max") ms p99 $(field ack_p99_ms "$ingest_max") ms   target >= 50,000/s
   at a fixed 10,000 results/s: ack p50 $(field ack_p50_ms "$ingest_10k") ms p99 $(field ack_p99_ms "$ingest_10k") ms (achieved $(field results_per_s "$ingest_10k")/s)   target p99 <= 50 ms
4. /metrics with $CHECKS checks x 3 locations: median $(field median_ms "$scrape") ms, max $(field max_ms "$scrape") ms, $(field bytes "$scrape") bytes   target <= 250 ms
5. monthly report (10 checks x 3 locations x 1-minute results):
$(sed 's/^/   /' <<<"$sla")
   target <= 2 s, <= 200 MB
6. floor, one blocking thread: https $(floor_us "$floor_https") us CPU per handshake+exchange, http $(floor_us "$floor_http") us
   (agent https / floor: $(ratio "$A_HTTPS_US" "$(floor_us "$floor_https")")x)
work files: $WORK
EOF
