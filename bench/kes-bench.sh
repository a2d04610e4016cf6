#!/usr/bin/env bash
# 4 KiB SSE-S3 PUT/GET through a real `coffer kes` server vs plain, and KMS calls per 1,000 operations with
# the key cache alone and with bucket keys (COFFER_KMS_BUCKET_KEYS=on). Loopback only; bounded counts.
#   bash bench/kes-bench.sh [objects=1000] [concurrency=16]
set -euo pipefail
cd "$(dirname "$0")/.."
OBJECTS=${1:-1000}
CONC=${2:-16}
WORK=$(mktemp -d)
# The KES server runs in a subshell (not a job of this shell): its PID goes to a file for the cleanup.
trap 'kill $(jobs -p) $(cat "$WORK/kes.pid" 2>/dev/null) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
REPO=$PWD
coffer() { node "$REPO/bin/coffer.js" "$@"; }
(cd "$WORK" && coffer kes identity new --key server.key --cert server.cert --ip 127.0.0.1 localhost >/dev/null \
  && coffer kes identity new --key root.key --cert root.cert root >/dev/null)
ROOT=$(cd "$WORK" && coffer kes identity of root.cert)
mkdir "$WORK/keys"
cat > "$WORK/kes.yml" <<YML
admin:
  identity: $ROOT
tls:
  key: server.key
  cert: server.cert
keystore:
  fs:
    path: ./keys
YML
(cd "$WORK" && { node "$REPO/bin/coffer.js" kes server --config kes.yml --addr 127.0.0.1:0 > kes.out 2>&1 & echo $! > kes.pid; })
for _ in $(seq 50); do grep -q 'listening on' "$WORK/kes.out" 2>/dev/null && break; sleep 0.2; done
KES_URL=$(grep -o 'https://[^ ]*' "$WORK/kes.out" | head -1)
export MINIO_ROOT_USER=benchuser MINIO_ROOT_PASSWORD=benchsecret
scrape() { # $1 endpoint → "generate decrypt" KMS call counts
  node --import tsx -e "
    import('./api/auth/sign.ts').then(async ({ signRequest }) => {
      const url = new URL('/minio/v2/metrics/cluster', process.argv[1]);
      const headers = signRequest({ method: 'GET', url, headers: {}, payloadHash: 'UNSIGNED-PAYLOAD', accessKeyId: 'benchuser', secretAccessKey: 'benchsecret', region: 'us-east-1', nowMs: Date.now() });
      const text = await (await fetch(url, { headers })).text();
      const get = (op) => /coffer_kms_calls_total\\{op=\"(\\w+)\"\\} (\\d+)/g.exec && [...text.matchAll(new RegExp('coffer_kms_calls_total\\\\{op=\"' + op + '\"\\\\} (\\\\d+)', 'g'))][0]?.[1];
      console.log(get('generate') + ' ' + get('decrypt'));
    });" "$1"
}
run_case() { # $1 label, $2 sse, $3 extra env
  local dir; dir=$(mktemp -d -p "$WORK")
  env $3 MINIO_KMS_KES_ENDPOINT="$KES_URL" MINIO_KMS_KES_KEY_FILE="$WORK/root.key" MINIO_KMS_KES_CERT_FILE="$WORK/root.cert" \
    MINIO_KMS_KES_KEY_NAME=bench-key MINIO_KMS_KES_CAPATH="$WORK/server.cert" \
    node bin/coffer.js server --address 127.0.0.1:0 "$dir" > "$dir.out" 2>&1 &
  local pid=$!
  for _ in $(seq 50); do grep -q '^API:' "$dir.out" 2>/dev/null && break; sleep 0.2; done
  local endpoint; endpoint=$(grep '^API:' "$dir.out" | awk '{print $2}')
  local before; before=$(scrape "$endpoint")
  npx tsx bench/load.ts --endpoint "$endpoint" --size 4KiB --objects "$OBJECTS" --concurrency "$CONC" --sse "$2" --server-pid "$pid" | grep -E '^(put|get) ' | sed "s/^/$1 /"
  local after; after=$(scrape "$endpoint")
  echo "$1 KMS calls (generate decrypt) before: $before after: $after"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
run_case plain none ""
run_case sse-s3-cache s3 ""
run_case sse-s3-bucketkeys s3 "COFFER_KMS_BUCKET_KEYS=on"
