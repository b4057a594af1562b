# syntax=docker/dockerfile:1
#
# sesroute's container image: the release binary on distroless/cc (glibc,
# CA certificates, no shell, no package manager), running as uid 65532.
#
#   docker build -t sesroute .
#   docker run --read-only --stop-timeout 30 -p 9090:9090 \
#       -v "$PWD/sesroute.toml:/etc/sesroute/sesroute.toml:ro" \
#       -v sesroute-data:/var/lib/sesroute sesroute
#
# What the image relies on is proven without a Docker engine by
# scripts/check-image-runtime; hadolint checks this file (scripts/lint-deploy).

# The build stage and the runtime image must share a Debian release: a binary
# linked on a newer glibc (trixie's rust:1-slim) does not start on
# cc-debian12's glibc 2.36. Pin the toolchain to the minor version CI uses.
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /build

# Dependencies in a layer of their own, rebuilt only when Cargo.toml or
# Cargo.lock change: compile them against empty stand-ins for the crate's own
# targets (the manifest names benches/route.rs, so it must exist too), then
# forget the stand-ins' fingerprints so the real sources are always compiled.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > benches/route.rs \
    && cargo build --release --locked \
    && rm -rf src benches target/release/sesroute target/release/.fingerprint/sesroute-*

COPY src ./src
COPY benches ./benches
# /out is laid out like the runtime image's file system. The data directory
# is created here because the runtime image has no shell to run mkdir in.
RUN cargo build --release --locked \
    && install -D -m 0755 target/release/sesroute /out/usr/local/bin/sesroute \
    && install -d -m 0755 /out/var/lib/sesroute

# :nonroot is cc-debian12 with USER 65532 (nonroot) and /home/nonroot.
# For production, pin both FROM lines by digest and let a bot bump them.
FROM gcr.io/distroless/cc-debian12:nonroot

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="sesroute" \
      org.opencontainers.image.description="Routes Amazon SES feedback (bounces, complaints, deliveries, events) from SQS to the teams who own it" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"

COPY --from=build /out/usr/local/bin/sesroute /usr/local/bin/sesroute
# File sinks write here; a new directory made by COPY --chown belongs to the
# daemon's user, and so does the volume Docker seeds from it.
COPY --from=build --chown=65532:65532 /out/var/lib/sesroute /var/lib/sesroute

# The config is mounted read-only (ConfigMap, bind mount, ECS volume); the
# image ships none, so a missing mount fails loudly instead of polling the
# example's queues. Logs are JSON even when a TTY is attached (docker run -t),
# because log collectors read stdout.
ENV SESROUTE_CONFIG=/etc/sesroute/sesroute.toml \
    SESROUTE_LOG_FORMAT=json

# Numeric, so Kubernetes can verify runAsNonRoot from the image alone (it
# cannot resolve a user name without the image's /etc/passwd).
USER 65532:65532
# The only writable path the daemon needs; the root file system can be
# read-only (docker run --read-only, readOnlyRootFilesystem).
VOLUME ["/var/lib/sesroute"]
# [server] listen: /healthz, /readyz, /metrics.
EXPOSE 9090

# sesroute finishes in-flight messages within runtime.shutdown_grace_secs
# (25 s) after SIGTERM: give it 30 s (docker run --stop-timeout 30, Compose
# stop_grace_period: 30s, ECS stopTimeout: 30, Kubernetes
# terminationGracePeriodSeconds: 30).
STOPSIGNAL SIGTERM
# Exec form: the image has no shell. `sesroute health` GETs /healthz on the
# [server] listen address and exits 0 when it answers 200.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["/usr/local/bin/sesroute", "health"]

ENTRYPOINT ["/usr/local/bin/sesroute"]
CMD ["run"]
