//! `capture --out DIR`: what the live collectors hold, written in the bundle
//! layout of docs/design.md section 4, so `diagnose --bundle DIR` reproduces the
//! live diagnosis offline and a bug report carries the evidence.
//!
//! This module makes no API call: `app` runs the same collectors as
//! `cluster` (started to keep their objects) until they have read every
//! source once, and each collector writes what its `fill` reads
//! ([`crate::collect::Source::capture`]). The bundle therefore loads to the
//! state the live view was built from. Kubernetes objects are written with
//! the fields the exporter keeps (kubectl's shape, the rest stripped), EC2
//! and CloudTrail in the AWS CLI's shape, ipamd payloads verbatim.

use crate::collect::Live;
use crate::sources::bundle::pretty_json;
use crate::{Error, Result};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Component, Path};

/// What capture could not read, by file (reported on stderr and in bundle.json).
pub(crate) type Skipped = BTreeMap<String, String>;

fn write_file(out: &Path, rel: &str, bytes: &[u8]) -> Result<()> {
    // Paths come from object names (ipamd/<node>/): never outside `out`.
    let rel_path = Path::new(rel);
    if !rel_path
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return Err(Error::Usage(format!(
            "capture: refusing to write {rel:?} (not a plain relative path)"
        )));
    }
    let path = out.join(rel_path);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| Error::Read {
            file: dir.display().to_string(),
            source,
        })?;
    }
    std::fs::write(&path, bytes).map_err(|source| Error::Read {
        file: path.display().to_string(),
        source,
    })
}

/// Writes what `live` holds into `out` (created if missing), then
/// `bundle.json`. Returns what was skipped.
///
/// `capturedAt` is stamped after every payload was taken from the
/// collectors (and after the CloudTrail window's end), so no payload is
/// newer than the bundle's "now": a freshly released IP's age is never
/// overstated.
pub(crate) fn write(out: &Path, live: &Live, unread: &[&str]) -> Result<Skipped> {
    std::fs::create_dir_all(out).map_err(|source| Error::Read {
        file: out.display().to_string(),
        source,
    })?;
    let bundle = live.capture();
    let mut skipped = bundle.skipped().clone();
    for source in unread {
        skipped.insert(
            format!("({source})"),
            "not read within --ready-timeout".to_string(),
        );
    }
    for (rel, bytes) in bundle.files() {
        if let Err(e) = write_file(out, rel, bytes) {
            skipped.insert(rel.to_string(), e.to_string());
        }
    }
    let now = jiff::Timestamp::now();
    let meta = json!({
        "capturedAt": now.to_string(),
        "clusterName": live.cluster_name,
        "region": live.region,
        "cloudtrailStartTime": bundle.cloudtrail_start.map(|t| t.to_string()),
        "configMapsNotFound": bundle.config_maps_not_found,
        "capturedBy": format!("eks-ipam-exporter {}", crate::VERSION),
        "skipped": skipped,
    });
    write_file(out, "bundle.json", &pretty_json(&meta))?;
    Ok(skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_outside_the_bundle_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for rel in ["../x", "/etc/x", "ipamd/../../x", ""] {
            assert!(write_file(dir.path(), rel, b"x").is_err(), "{rel}");
        }
        write_file(dir.path(), "ipamd/n1/enis.json", b"{}").unwrap();
        assert!(dir.path().join("ipamd/n1/enis.json").is_file());
    }
}
