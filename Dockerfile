# syntax=docker/dockerfile:1

# Builds the tenant-operator image in two stages: a Rust builder on the toolchain
# that Cargo.toml's rust-version names, then a distroless runtime with no shell.
#
#   docker build --build-arg VERSION="$(cargo pkgid | cut -d'#' -f2)" \
#     -t tenant-operator:"$(cargo pkgid | cut -d'#' -f2)" .

ARG RUST_VERSION=1.95

# The builder is Debian 12 (bookworm) like the runtime, so the binary needs no newer
# glibc than the runtime image has.
FROM docker.io/library/rust:${RUST_VERSION}-slim-bookworm AS builder
WORKDIR /src

# Query macros, if any are added, read the committed query data instead of a database.
ENV SQLX_OFFLINE=true

COPY . .

# The cache mounts keep the registry and build outputs between builds, so the
# binary is copied out of the cached target folder in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin tenant-operator \
    && install -D -m 0755 target/release/tenant-operator /out/tenant-operator

# distroless/cc carries glibc, libgcc and CA certificates, and runs as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot

ARG VERSION=0.1.0
ARG REVISION=unknown

LABEL org.opencontainers.image.title="tenant-operator" \
      org.opencontainers.image.description="Imports contact-center tenant archives into a cluster's configuration database" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=builder /out/tenant-operator /usr/local/bin/tenant-operator

USER 65532:65532
WORKDIR /home/nonroot
ENV LOG_FORMAT=json

ENTRYPOINT ["/usr/local/bin/tenant-operator"]
CMD ["run"]
