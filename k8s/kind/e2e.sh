#!/usr/bin/env bash
# kind end-to-end: load the image into the kind cluster, deploy the kind
# overlay, wait for the submit Job (it follows the training job to its end),
# print the results and the final status, and delete the cluster (KEEP=1
# keeps it). Needs docker, kind and kubectl; run it through `make kind-e2e`,
# which builds the image and creates the cluster first.
set -euo pipefail
cd "$(dirname "$0")/../.."

cluster=${KIND_CLUSTER:-whorl}
image=${IMAGE:-whorl:dev}
timeout=${TIMEOUT:-30m}
k() { kubectl --context "kind-$cluster" -n whorl "$@"; }

if [ "${KEEP:-0}" != 1 ]; then
  trap 'kind delete cluster --name "$cluster"' EXIT
fi

kind load docker-image "$image" --name "$cluster"
kubectl --context "kind-$cluster" apply -k k8s/overlays/kind
k rollout status statefulset/whorl-coordinator --timeout=5m
k rollout status deployment/whorl-worker --timeout=5m
# Show progress while waiting; the image has no shell, so exec the binary.
( while sleep 30; do k exec whorl-coordinator-0 -c coordinator -- /whorl status 2>/dev/null | head -n 3 || true; done ) &
progress=$!
trap 'kill $progress 2>/dev/null || true; [ "${KEEP:-0}" = 1 ] || kind delete cluster --name "$cluster"' EXIT
if ! k wait --for=condition=complete job/whorl-submit --timeout="$timeout"; then
  echo "kind-e2e: the job did not complete within $timeout" >&2
  k logs job/whorl-submit >&2 || true
  k get pods -o wide >&2 || true
  exit 1
fi
echo "--- results (kubectl logs job/whorl-submit)"
k logs job/whorl-submit
echo "--- status"
k exec whorl-coordinator-0 -c coordinator -- /whorl status
