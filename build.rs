// The demo bundle is embedded with include_dir!: rebuild when it changes.
fn main() {
    println!("cargo:rerun-if-changed=bundles/demo");
    println!("cargo:rerun-if-changed=src/model/instance_limits.csv");
    // Pack the executable's ~50,000 relative relocations (PIE) into a few KB of
    // DT_RELR instead of 1.1 MB of .rela.dyn, which the loader reads whole at
    // start: ~0.8 MiB less resident in every process, node agents included
    // (measured). A DT_RELR binary needs glibc >= 2.36 where it runs, so only
    // builds that know their runtime opt in: the Dockerfile (distroless
    // cc-debian12, glibc 2.36) sets EKS_IPAM_PACK_RELATIVE_RELOCS=1. A plain
    // `cargo build` stays loadable on Amazon Linux 2023 (glibc 2.34).
    println!("cargo:rerun-if-env-changed=EKS_IPAM_PACK_RELATIVE_RELOCS");
    let wanted = std::env::var("EKS_IPAM_PACK_RELATIVE_RELOCS").as_deref() == Ok("1");
    if wanted
        && std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
