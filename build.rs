// The demo bundle is embedded with include_dir!: rebuild when it changes.
fn main() {
    println!("cargo:rerun-if-changed=bundles/demo");
    println!("cargo:rerun-if-changed=src/model/instance_limits.csv");
    // Pack the executable's ~50,000 relative relocations (PIE) into a few KB of
    // DT_RELR instead of 1.1 MB of .rela.dyn, which the loader reads whole at
    // start: ~0.8 MiB less resident in every process, node agents included
    // (measured; glibc >= 2.36, lld or
    // binutils >= 2.38; both in Debian bookworm and the distroless image).
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
