# syntax=docker/dockerfile:1
# whorl's container image: the static binary on an empty base, run as a
# non-root user. No shell, no package manager, no libc: `docker run whorl:dev
# version`. Build with `make image` (IMAGE=whorl:dev by default).

# The Go release of go.mod's go line (k8s/dockerfile_test.go checks that they agree).
ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Module downloads are their own layer: they change less often than the code.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/root/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/whorl ./cmd/whorl && \
    mkdir -p /out/root/tmp /out/root/var/lib/whorl && \
    chmod 1777 /out/root/tmp

FROM scratch
COPY --from=build /out/whorl /whorl
# /tmp and the coordinator's data directory exist and belong to the user;
# in Kubernetes both are volumes (the root filesystem is read-only).
COPY --from=build --chown=65532:65532 /out/root/ /
USER 65532:65532
# coordinator raft, gRPC; worker ring; metrics
EXPOSE 7400 7401 7410 9090
ENTRYPOINT ["/whorl"]
CMD ["--help"]
