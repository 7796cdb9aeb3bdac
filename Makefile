# whorl — make help lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO        ?= go
BIN       ?= bin/whorl
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
PROTOS    := $(shell find proto -name '*.proto' 2>/dev/null)
# Packages of this module only (never vet third-party code such as gorgonia.org/tensor).
PKGS      := ./...
RUN_ARGS  ?=
# The flowers photos that `make dataset` packs (only those credited CC BY 2.0).
FLOWERS   ?= ../shared/data/flowers
TEST_FLAGS ?= -race -timeout 30m

.PHONY: help build run test unit bench bench-allreduce generate check-generate lint e2e clean dataset

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build the static binary into bin/whorl
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/whorl

run: build ## run the main job (the seven-step experiment on the embedded data)
	$(BIN) run $(RUN_ARGS)

test: lint unit ## lint, then every test with the race detector
	@echo "make test: all checks passed"

# The e2e suites measure fault-recovery times (issue 8's 5 s target): they run after the other
# packages and one at a time, so that race-built unit tests do not share the 2 cores with them.
unit: ## go test -race of every package but e2e, then the e2e suites one package at a time, then ./model/... without -race (its ResNet-scale tests)
	$(GO) test $(TEST_FLAGS) $$($(GO) list $(PKGS) | grep -v '/e2e')
	$(GO) test $(TEST_FLAGS) -p 1 ./e2e/...
	$(GO) test -timeout 30m ./model/...

bench: ## go test benchmarks of every package (no race detector)
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

bench-allreduce: build ## ring all-reduce, in-stream vs direct lanes, against raw TCP in the same run (N=2,4; 1, 16, 64 MiB)
	@echo "N bytes transport busbw_GiB/s tcp_GiB/s ratio correct"
	@for n in 2 4; do for b in 1MiB 16MiB 64MiB; do \
	  it=20; [ $$b = 64MiB ] && it=8; [ $$b = 1MiB ] && it=100; \
	  for t in grpc direct; do \
	    bin/whorl bench allreduce --workers $$n --bytes $$b --iters $$it --transport $$t --json | \
	      sed -E 's/.*"busbw_gibps":([0-9.]+).*"tcp_gibps":([0-9.]+),"ratio":([0-9.]+),"correct":([a-z]+).*/\1 \2 \3 \4/' | \
	      awk -v n=$$n -v b=$$b -v t=$$t '{printf "%s %s %s %.2f %.2f %.2f %s\n", n, b, t, $$1, $$2, $$3, $$4}'; \
	  done; done; done

generate: ## regenerate the Go code of proto/ with buf (local plugins from go.mod)
	@if [ -n "$(PROTOS)" ]; then $(GO) tool buf generate; else echo "no .proto files"; fi

check-generate: ## fail when the committed generated code differs from what buf generates
	@if [ -n "$(PROTOS)" ]; then \
	  tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	  $(GO) tool buf generate -o $$tmp --template buf.gen.yaml; \
	  for f in $$(cd $$tmp && find . -name '*.go'); do \
	    cmp -s $$tmp/$$f $$f || { echo "generated code drifted: $$f (run make generate)"; exit 1; }; \
	  done; \
	  for f in $$(find proto -name '*.pb.go'); do \
	    [ -f $$tmp/$$f ] || { echo "stale generated file: $$f (run make generate)"; exit 1; }; \
	  done; \
	  echo "generated code is up to date"; \
	fi

lint: check-generate ## gofmt, go vet, buf lint and the import-graph rules (internal/importgraph)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@if [ -n "$(PROTOS)" ]; then $(GO) tool buf lint; fi
	$(GO) test -count=1 ./internal/importgraph

e2e: build ## multi-process and fault tests (root and network namespaces for the multi-host suite)
	$(GO) test -race -timeout 30m -count=1 ./e2e/...

dataset: ## rebuild the embedded CC BY photo set (shard/embedded) from $(FLOWERS)
	$(GO) run ./shard/internal/mkdataset -src $(FLOWERS) -out shard/embedded

clean: ## remove build outputs
	rm -rf bin whorl-out

# --- container image, kind and Kubernetes checks (k8s/) ---
IMAGE        ?= whorl:dev
KIND_CLUSTER ?= whorl

WEED_IMAGE   ?= whorl-weed:dev

.PHONY: image image-weed kind-up kind-e2e k8s-verify

image: build ## build the container image $(IMAGE): bin/whorl FROM scratch (pulls nothing; needs a Docker engine)
	rm -rf bin/rootfs && mkdir -p bin/rootfs/tmp bin/rootfs/var/lib/whorl && chmod 1777 bin/rootfs/tmp
	docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t $(IMAGE) .

image-weed: ## build $(WEED_IMAGE): SeaweedFS's static weed (internal/s3test/build-seaweedfs.sh) FROM scratch, the S3 server of compose's s3 profile and k8s/overlays/s3
	@weed=$$(internal/s3test/build-seaweedfs.sh | tail -n 1) && \
	  rm -rf bin/weed-image && mkdir -p bin/weed-image/rootfs/tmp bin/weed-image/rootfs/data && chmod 1777 bin/weed-image/rootfs/tmp && \
	  cp "$$weed" bin/weed-image/weed && \
	  ver=$$(basename "$$(dirname "$$(dirname "$$weed")")") && \
	  docker build --build-arg SEAWEEDFS_VERSION="$${ver#seaweedfs-}" -f k8s/seaweedfs/Dockerfile -t $(WEED_IMAGE) bin/weed-image

kind-up: ## create the kind cluster of k8s/kind/cluster.yaml (needs Docker and kind)
	@kind get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)' || kind create cluster --name $(KIND_CLUSTER) --config k8s/kind/cluster.yaml

kind-e2e: image kind-up ## deploy the kind overlay with the image, run the job, print the report, delete the cluster
	KIND_CLUSTER=$(KIND_CLUSTER) IMAGE=$(IMAGE) k8s/kind/e2e.sh

k8s-verify: ## kubectl apply --dry-run=server of every overlay against a real kube-apiserver (built from the Go module proxy, cached in /var/cache/whorl)
	k8s/verify/dry-run.sh

# --- a real one-node Kubernetes on this machine (k8s/node; root, Docker, containerd) ---
.PHONY: k8s-node-up k8s-node-down k8s-node-test

k8s-node-up: image ## start a one-node Kubernetes here (k8s/node/up.sh: control plane, kubelet, containerd, CoreDNS built from the Go module proxy; $(IMAGE) imported); prints its kubeconfig
	WHORL_NODE_IMAGES=$(IMAGE) k8s/node/up.sh

k8s-node-down: ## stop the node of k8s-node-up and remove everything it made (k8s/node/down.sh)
	k8s/node/down.sh

k8s-node-test: image ## start the node, run e2e/k8snode on it (k8s/overlays/node, a job through pod deletions), stop the node
	@set -o pipefail; kc=$$(WHORL_NODE_IMAGES=$(IMAGE) k8s/node/up.sh | tail -n 1) || exit 1; \
	  trap 'k8s/node/down.sh' EXIT; \
	  WHORL_K8S_NODE=$$kc $(GO) test -count=1 -timeout 45m -v ./e2e/k8snode
