//! The shipped manifests and the binary agree on how node agents are found.

mod common;
use common::repo;
use eks_ipam_exporter::sources::kube::{AGENT_PORT_NAME, AGENT_SELECTOR};

#[test]
fn daemonset_pods_match_the_agent_selector_and_port_name() {
    let ds = std::fs::read_to_string(repo("deploy/daemonset.yaml")).unwrap();
    let template = &ds[ds.find("  template:").expect("pod template")..];
    let labels_block =
        &template[template.find("labels:").unwrap()..template.find("spec:").unwrap()];
    for kv in AGENT_SELECTOR.split(',') {
        let (k, v) = kv.split_once('=').unwrap();
        assert!(
            labels_block.contains(&format!("{k}: {v}")),
            "pod template lacks label {k}={v}:\n{labels_block}"
        );
    }
    assert!(
        template.contains(&format!("name: {AGENT_PORT_NAME}")),
        "agent port must be named {AGENT_PORT_NAME}"
    );
}

/// Names of the ELF64 (little-endian) sections of `bytes`.
fn elf_section_names(bytes: &[u8]) -> Vec<String> {
    let u16_at = |o: usize| u16::from_le_bytes(bytes[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap()) as usize;
    assert_eq!(&bytes[..5], b"\x7fELF\x02", "not an ELF64 file");
    let (shoff, shentsize, shnum, shstrndx) =
        (u64_at(0x28), u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let strtab = u64_at(shoff + shstrndx * shentsize + 0x18);
    (0..shnum)
        .map(|i| {
            let start = strtab + u32_at(shoff + i * shentsize);
            let end = start + bytes[start..].iter().position(|&b| b == 0).unwrap();
            String::from_utf8_lossy(&bytes[start..end]).into_owned()
        })
        .collect()
}

#[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64"))]
/// A plain build must load on glibc 2.34 (Amazon Linux 2023): no DT_RELR
/// (issue 13 item 6). The image opts in, because its runtime has glibc 2.36.
#[test]
fn default_build_has_no_packed_relocations_and_the_image_opts_in() {
    let bytes = std::fs::read(env!("CARGO_BIN_EXE_eks-ipam-exporter")).unwrap();
    let names = elf_section_names(&bytes);
    assert!(
        names.iter().any(|n| n == ".text"),
        "section names parsed: {names:?}"
    );
    if std::env::var("EKS_IPAM_PACK_RELATIVE_RELOCS").as_deref() != Ok("1") {
        assert!(
            !names.iter().any(|n| n == ".relr.dyn"),
            "a default build must not need glibc 2.36: {names:?}"
        );
    }
    let dockerfile =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile")).unwrap();
    let build_stage = dockerfile.split("\nFROM ").nth(1).unwrap_or_default();
    assert!(
        build_stage.contains("ENV EKS_IPAM_PACK_RELATIVE_RELOCS=1"),
        "the image build must opt in to packed relocations"
    );
    assert!(
        dockerfile.contains("distroless/cc-debian12"),
        "packed relocations need the glibc 2.36 runtime of cc-debian12"
    );
}
