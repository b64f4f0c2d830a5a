// The demo bundle is embedded with include_dir!: rebuild when it changes.
fn main() {
    println!("cargo:rerun-if-changed=bundles/demo");
    println!("cargo:rerun-if-changed=src/model/instance_limits.csv");
}
