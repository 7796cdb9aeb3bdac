# whorl's container image: the static binary on an empty base, run as a
# non-root user. No shell, no package manager, no libc.
#
# It builds on a machine that can pull nothing: `make image` builds the
# binary with the Makefile (CGO_ENABLED=0, -trimpath, version and commit
# stamped) into bin/whorl, prepares bin/rootfs (an empty /tmp and the
# coordinator's data directory) and copies both in; .dockerignore sends
# only those to the engine. `docker run --rm whorl:dev version`.
FROM scratch
ARG VERSION=dev
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="whorl" \
      org.opencontainers.image.description="distributed RotNet pretraining: raft coordinator, gRPC ring workers" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.licenses="see LICENSE"
COPY bin/whorl /whorl
# /tmp and /var/lib/whorl exist and belong to the user; in Kubernetes and
# compose both are volumes (the root filesystem is read-only).
COPY --chown=65532:65532 bin/rootfs/ /
USER 65532:65532
# coordinator raft, gRPC; worker ring; metrics
EXPOSE 7400 7401 7410 9090
ENTRYPOINT ["/whorl"]
CMD ["--help"]
