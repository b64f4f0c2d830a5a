# syntax=docker/dockerfile:1
# eks-ipam-exporter container image.
#   docker build -t ghcr.io/eks-ipam-exporter/eks-ipam-exporter:0.1.0 .
# Stage 1 builds the release binary with the locked dependency versions; stage 2 is distroless
# (glibc, libgcc, CA certificates; no shell, no package manager) and runs as the "nonroot" user.

FROM rust:1-bookworm AS build
WORKDIR /src
# The whole source tree (see .dockerignore): Cargo.toml, Cargo.lock, src/ and the files the binary
# embeds (the demo bundle).
COPY . .
# The runtime image has glibc 2.36, which loads packed relative relocations
# (DT_RELR, see build.rs): ~0.8 MiB less resident per process.
ENV EKS_IPAM_PACK_RELATIVE_RELOCS=1
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin eks-ipam-exporter \
    && install -D -m 0755 target/release/eks-ipam-exporter /out/eks-ipam-exporter

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/eks-ipam-exporter /usr/local/bin/eks-ipam-exporter
USER 65532:65532
# 10097: cluster role (and demo); 10098: node agent
EXPOSE 10097 10098
ENTRYPOINT ["/usr/local/bin/eks-ipam-exporter"]
CMD ["cluster"]
