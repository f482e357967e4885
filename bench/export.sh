#!/usr/bin/env bash
# The SIEM export's events per second (custos bench export, in-process) to a real rsyslogd
# taking syslog over TLS on a loopback port, with a certificate authority made here; in
# the same run, the wire alone (the same events, batches and receiver) and the OCSF
# mapping alone.
#
#   bash bench/export.sh [RUNS]      (default 5 runs; the median goes in BENCHMARKS.md)
#
# Environment: BENCH_ENTRIES (ledger entries per run, default 20000), BENCH_BATCH (events
# per batch, default 500), BENCH_BIN (run this binary instead of building this tree's).
# Needs rsyslogd with its TLS driver (Debian: rsyslog rsyslog-gnutls) and openssl.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-5}"
ENTRIES="${BENCH_ENTRIES:-20000}"
BATCH="${BENCH_BATCH:-500}"

source bench/common.sh
BIN="$(custos_bin "${BENCH_BIN:-}")"
export CUSTOS_LOG="${CUSTOS_LOG:-warn}"

work="$(mktemp -d "${TMPDIR:-/tmp}/custos-bench-export.XXXXXX")"
rsyslog_pid=""
cleanup() {
  [ -n "$rsyslog_pid" ] && kill "$rsyslog_pid" 2>/dev/null && wait "$rsyslog_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj "/CN=bench CA" -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
  -keyout "$work/key.pem" -out "$work/cert.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost\n' > "$work/san.ext"
openssl x509 -req -in "$work/cert.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
  -CAcreateserial -days 1 -extfile "$work/san.ext" -out "$work/cert.pem" 2>/dev/null

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
mkdir -p "$work/rsyslog"
cat > "$work/rsyslog.conf" <<CONF
global(workDirectory="$work/rsyslog" maxMessageSize="64k"
       defaultNetstreamDriver="gtls" defaultNetstreamDriverCAFile="$work/ca.pem"
       defaultNetstreamDriverCertFile="$work/cert.pem" defaultNetstreamDriverKeyFile="$work/key.pem")
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imtcp" address="127.0.0.1" port="$port" ruleset="export")
ruleset(name="export") { action(type="omfile" file="$work/received.log"
                                template="RSYSLOG_SyslogProtocol23Format") }
CONF
/usr/sbin/rsyslogd -n -f "$work/rsyslog.conf" -i "$work/rsyslog.pid" &
rsyslog_pid=$!
for _ in $(seq 1 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
  sleep 0.1
done

echo "machine: $(nproc) CPUs; $(free -g | awk '/^Mem:/ {print $2 " GiB RAM"}'); rsyslogd $(/usr/sbin/rsyslogd -v | head -1 | awk '{print $2}')"
"$BIN" bench export --syslog "127.0.0.1:$port" --server-name localhost --ca-file "$work/ca.pem" \
  --entries "$ENTRIES" --batch "$BATCH" --runs "$RUNS"
echo "rsyslogd wrote $(wc -l < "$work/received.log") lines"
