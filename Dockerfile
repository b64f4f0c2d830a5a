# syntax=docker/dockerfile:1
# eks-ipam-exporter container image, amd64 and arm64 (Graviton):
#   docker buildx build --platform linux/amd64,linux/arm64 -t <registry>/eks-ipam-exporter:0.1.0 --push .
# Stage 1 runs on the build host's own architecture ($BUILDPLATFORM) and cross-compiles the
# release binary for $TARGETARCH with tools/cross-build.sh (the script the test command runs, then
# runs its arm64 output under qemu-user: tests/arm64/run.sh); no emulated build. Stage 2 is
# distroless (glibc, libgcc, CA certificates; no shell, no package manager), runs as "nonroot".
#
# Base images are pinned by digest (multi-arch index digests). They were taken from public
# Dockerfiles on 2026-12-04 and could not be pulled here (no registry access, no Docker engine):
# check them with `docker buildx imagetools inspect <image>` before the first release, and let
# Dependabot/Renovate move them (the tag beside each digest says which line it follows).
ARG RUST_IMAGE=rust:1-bookworm@sha256:93ce27a88655056a51dbdd8f5f2d7ddc071c7b0070fb288a37b5a285fc83971e
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f

FROM --platform=$BUILDPLATFORM ${RUST_IMAGE} AS build
ARG TARGETARCH
WORKDIR /src
# The whole source tree (see .dockerignore): Cargo.toml, Cargo.lock, src/, the files the binary
# embeds (the demo bundle) and tools/cross-build.sh.
COPY . .
# The runtime image has glibc 2.36, which loads packed relative relocations
# (DT_RELR, see build.rs): ~0.8 MiB less resident per process.
ENV EKS_IPAM_PACK_RELATIVE_RELOCS=1
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,id=eks-ipam-target-${TARGETARCH} \
    tools/cross-build.sh "${TARGETARCH}" /out/eks-ipam-exporter

FROM ${RUNTIME_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="eks-ipam-exporter" \
      org.opencontainers.image.description="Prometheus exporter that finds, explains and pages on pod-IP exhaustion on Amazon EKS" \
      org.opencontainers.image.source="https://github.com/eks-ipam-exporter/eks-ipam-exporter" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=build /out/eks-ipam-exporter /usr/local/bin/eks-ipam-exporter
USER 65532:65532
# 10097: cluster role (and demo); 10098: node agent
EXPOSE 10097 10098
ENTRYPOINT ["/usr/local/bin/eks-ipam-exporter"]
CMD ["cluster"]
