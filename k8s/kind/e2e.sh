#!/usr/bin/env bash
# kind end-to-end: load the image into the kind cluster, deploy the kind
# overlay, wait for the submitted job to finish, print its report and delete
# the cluster (KEEP=1 keeps it). Needs docker, kind and kubectl; run through
# `make kind-e2e`, which builds the image and creates the cluster first.
set -euo pipefail
cd "$(dirname "$0")/../.."

cluster=${KIND_CLUSTER:-whorl}
image=${IMAGE:-whorl:dev}
timeout=${TIMEOUT:-1800}
k() { kubectl --context "kind-$cluster" -n whorl "$@"; }

if [ "${KEEP:-0}" != 1 ]; then
  trap 'kind delete cluster --name "$cluster"' EXIT
fi

kind load docker-image "$image" --name "$cluster"
kubectl --context "kind-$cluster" apply -k k8s/overlays/kind
k rollout status statefulset/whorl-coordinator --timeout=5m
k rollout status deployment/whorl-worker --timeout=5m
k wait --for=condition=complete job/whorl-submit --timeout=10m
k logs job/whorl-submit

# The image has no shell: run the binary itself in a coordinator pod.
status() { k exec whorl-coordinator-0 -c coordinator -- /whorl status --json; }
start=$(date +%s)
until status | grep -Eq '"phase": *"(done|failed)"'; do
  if [ $(($(date +%s) - start)) -gt "$timeout" ]; then
    echo "kind-e2e: the job did not finish within $timeout s" >&2
    status >&2 || true
    exit 1
  fi
  sleep 10
done
status
status | grep -Eq '"phase": *"done"'
