#!/usr/bin/env bash
# The worker-memory measurement of README's "Packed data sets": one coordinator and one worker
# process train `small` at 64 px (the quick recipe, one epoch) on DATA; after STEPS pretraining
# steps it prints the worker's and the coordinator's peak RSS and stops both.
#
#   worker/testdata/stream-memory.sh WHORL_BINARY DATA [STEPS]
#   WORKER_FLAGS="--im2col-cache 0 --image-cache 32MiB" WORKER_GOMEMLIMIT=900MiB worker/testdata/stream-memory.sh ...
#
# DATA is a class folder (loaded whole) or a packed set (streamed). The 30-times set was made with
#   python3 -c '...os.symlink(photo, f"{dst}/{class}/r{k:02d}_{name}") for k in range(30)...'
#   whorl data pack --src f30 --out fp30 --shard-size 256MiB
set -u
W=$1; D=$2; STEPS=${3:-40}
tmp=$(mktemp -d)
trap 'kill $WP $CP 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
printf '{"data":{"dir":"%s","image_size":64,"store_size":64},"pretrain":{"epochs":1}}\n' "$D" > "$tmp/job.json"
"$W" coordinator --id c0 --data-dir "$tmp/c0" --out "$tmp/out" --raft-addr 127.0.0.1:7400 --grpc-addr 127.0.0.1:7401 > "$tmp/c0.log" 2>&1 &
CP=$!
# shellcheck disable=SC2086 # WORKER_FLAGS is a list of flags
GOMEMLIMIT="${WORKER_GOMEMLIMIT:-off}" "$W" worker --id w0 --coordinator 127.0.0.1:7401 --listen 127.0.0.1:7410 ${WORKER_FLAGS:-} > "$tmp/w0.log" 2>&1 &
WP=$!
sleep 2
"$W" submit --coordinator 127.0.0.1:7401 --preset quick --job "$tmp/job.json" > /dev/null || exit 1
start=$(date +%s)
while :; do
  step=$("$W" status --coordinator 127.0.0.1:7401 --json 2>/dev/null | python3 -c 'import json,sys
try:
  s=json.load(sys.stdin); print(int(s.get("nextStep",0)) if s.get("phase")=="PHASE_PRETRAINING" else -1)
except Exception: print(-1)')
  [ "$step" -ge "$STEPS" ] && break
  kill -0 $WP 2>/dev/null || { echo "worker exited:"; tail -5 "$tmp/w0.log"; exit 1; }
  [ $(( $(date +%s) - start )) -gt 1800 ] && { echo timeout; exit 1; }
  sleep 2
done
echo "data $D, step $step, $(( $(date +%s) - start )) s after submit"
echo "worker      $(grep VmHWM /proc/$WP/status)"
echo "coordinator $(grep VmHWM /proc/$CP/status)"
grep -o 'msg="streaming the packed dataset".*' "$tmp/w0.log" | head -1
