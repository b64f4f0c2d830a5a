//! Any bytes as any bundle file, next to the real demo bundle: load, build
//! the view and render every output. Never a panic; an error names a file.
#![no_main]
use eks_ipam_exporter::model::findings::Thresholds;
use eks_ipam_exporter::model::view::build;
use eks_ipam_exporter::render::{exposition, html, json, table};
use eks_ipam_exporter::sources::bundle::{load, BundleFiles, EmbeddedBundle};
use libfuzzer_sys::fuzz_target;

const FILES: &[&str] = &[
    "bundle.json",
    "kubernetes/nodes.json",
    "kubernetes/pods.json",
    "kubernetes/daemonsets.json",
    "kubernetes/deployments.json",
    "kubernetes/events.json",
    "kubernetes/nodeclaims.json",
    "kubernetes/nodepools.json",
    "kubernetes/ec2nodeclasses.json",
    "kubernetes/nodeclasses.json",
    "kubernetes/eniconfigs.json",
    "ec2/instance-types.json",
    "ec2/subnets.json",
    "ec2/network-interfaces.json",
    "cloudtrail/AssignPrivateIpAddresses.json",
    "ipamd/ip-10-0-36-41.us-west-2.compute.internal/enis.json",
    "ipamd/ip-10-0-36-41.us-west-2.compute.internal/metrics.txt",
];

/// The demo bundle with one file replaced by the fuzzer's bytes.
struct Overlay {
    base: EmbeddedBundle,
    path: &'static str,
    data: Vec<u8>,
}

impl BundleFiles for Overlay {
    fn read(&self, rel: &str) -> eks_ipam_exporter::Result<Option<Vec<u8>>> {
        if rel == self.path {
            return Ok(Some(self.data.clone()));
        }
        self.base.read(rel)
    }
    fn list(&self, rel_dir: &str) -> eks_ipam_exporter::Result<Vec<(String, bool)>> {
        self.base.list(rel_dir)
    }
    fn display(&self, rel: &str) -> String {
        self.base.display(rel)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    let files = Overlay { base: EmbeddedBundle::demo(), path: FILES[which as usize % FILES.len()], data: rest.to_vec() };
    match load(&files) {
        Ok(state) => {
            let view = build(&state, &Thresholds::default());
            let mut out = String::new();
            exposition::render(&view, &[], &mut out);
            let _ = json::render(&view);
            let _ = table::render(&view, false);
            let _ = html::render(&view, &[], &html::Filter::default(), 1.7e9, 30);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
