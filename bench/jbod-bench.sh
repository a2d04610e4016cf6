#!/usr/bin/env bash
# PUT/GET throughput of 1 drive vs 4 drives EC:2 vs 8 drives EC:4, plain and SSE-S3, in one compare run
# (cases alternate A B C … per round). All drives are folders on the same disk here, so this measures the
# CPU and syscall cost of erasure coding and fan-out, not the bandwidth of separate disks. Loopback only.
#   bash bench/jbod-bench.sh [rounds=2] [extra `coffer bench compare` options…]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-2}
shift || true
WORK=$(mktemp -d)
# Servers are started inside process substitutions, so they are not jobs of this shell: their PIDs go to a file.
trap 'kill $(cat "$WORK/pids" 2>/dev/null) 2>/dev/null || true; sleep 1; rm -rf "$WORK"' EXIT
export MINIO_ROOT_USER=benchuser MINIO_ROOT_PASSWORD=benchsecret MINIO_KMS_SECRET_KEY="bench-key:$(head -c 32 /dev/urandom | base64)"
export GLIBC_TUNABLES=glibc.malloc.trim_threshold=268435456:glibc.malloc.mmap_threshold=4194304
# The background scanner re-reads objects; keep it out of the measurement.
export COFFER_SCANNER_INTERVAL_MS=0
start() { # $1 label, $2 EC parity or '', $3… drive args → "URL PID"
  local label=$1 parity=$2; shift 2
  env ${parity:+MINIO_STORAGE_CLASS_STANDARD=EC:$parity} node bin/coffer.js server --address 127.0.0.1:0 --certs-dir "$WORK/no-certs" "$@" > "$WORK/$label.out" 2>&1 &
  local pid=$!
  echo "$pid" >> "$WORK/pids"
  for _ in $(seq 100); do grep -q '^API:' "$WORK/$label.out" 2>/dev/null && break; sleep 0.2; done
  echo "$(grep '^API:' "$WORK/$label.out" | awk '{print $2}') $pid"
}
read -r URL1 PID1 < <(start d1 '' "$WORK/one")
read -r URL4 PID4 < <(start d4 2 "$WORK/four/d{1...4}")
read -r URL8 PID8 < <(start d8 4 "$WORK/eight/d{1...8}")
node bin/coffer.js bench compare \
  --case "1drive=$URL1,pid=$PID1" --case "1drive-sse=$URL1,sse=s3,pid=$PID1" \
  --case "4drive-ec2=$URL4,pid=$PID4" --case "4drive-ec2-sse=$URL4,sse=s3,pid=$PID4" \
  --case "8drive-ec4=$URL8,pid=$PID8" --case "8drive-ec4-sse=$URL8,sse=s3,pid=$PID8" \
  --workload 'put:16MiB*16@2,get:16MiB*16@2,put:4KiB*300@8,get:4KiB*300@8' \
  --rounds "$ROUNDS" --verify length --access-key benchuser --secret-key benchsecret "$@"
