# syntax=docker/dockerfile:1
#
# The pxsync image: the four binaries of crates/pxsync (pxsync, pxsync-ingestor,
# pxsync-projector, pxsync-emitter) on debian:bookworm-slim, running as uid/gid 10001.
# The pxsync-sim simulators are test tools and are not in the image.
#
# Build from the repository root:   docker build -t REGISTRY/pxsync:TAG .
# Pin the toolchain if needed:       docker build --build-arg RUST_VERSION=1.95 ...
#
# This file has not been built on the development machine (no container engine runs there):
# it is reviewed by hand, and scripts/check-manifests.sh checks that the COPY lines below name
# exactly the [[bin]] targets of crates/pxsync/Cargo.toml and that every workspace member is
# copied into the builder.

ARG RUST_VERSION=1

# ---- builder -------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-slim-bookworm AS builder
WORKDIR /src
# cargo reads the whole workspace (members = crates/* and tests), so every member's manifest
# must be there even though only the pxsync package is built; proto/ holds the golden samples
# that some sources include. .dockerignore keeps target/ and the rest out of the context.
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
COPY tests ./tests
COPY proto ./proto
RUN cargo build --release --locked --bins -p pxsync

# ---- runtime -------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime
# ca-certificates: the Planexpo and inwink clients (rustls with the platform verifier) check
# server certificates against the system roots. Nothing else is installed: the binaries need
# only glibc. sh and tar stay available (debian-slim), which `kubectl cp` and operators use.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 pxsync \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin pxsync
COPY --from=builder /src/target/release/pxsync /usr/local/bin/pxsync
COPY --from=builder /src/target/release/pxsync-ingestor /usr/local/bin/pxsync-ingestor
COPY --from=builder /src/target/release/pxsync-projector /usr/local/bin/pxsync-projector
COPY --from=builder /src/target/release/pxsync-emitter /usr/local/bin/pxsync-emitter
USER 10001:10001
# 8080: the ingestor's webhook receiver (PXSYNC_WEBHOOK_ADDR); 9090: health and metrics
# (PXSYNC_HTTP_ADDR: /healthz, /readyz, /metrics). The manifests set both addresses.
EXPOSE 8080 9090
# Settings come from the environment only (see docs/operating.md); each Deployment names its
# binary as the container command.
CMD ["pxsync", "--help"]
