//! Which alert pages on a finding, at which severity, and where its runbook
//! section is: one table that the page, `diagnose` and the tests read, so
//! the severity a finding shows is the severity it pages with.
//!
//! The tests check this table against `deploy/rules/eks-ipam-exporter.rules.yaml`
//! (every alert named exists with that severity and that runbook URL) and
//! against `docs/runbook.md` (every anchor exists).

use super::findings::{Finding, FindingCode, Severity};

/// Where the runbook lives; the alerts' `runbook_url` annotations use the same base.
pub(crate) const RUNBOOK_URL: &str =
    "https://github.com/eks-ipam-exporter/eks-ipam-exporter/blob/main/docs/runbook.md";

/// An alert of the shipped rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Alert {
    pub(crate) name: &'static str,
    pub(crate) severity: Severity,
}

impl Alert {
    /// The alert's runbook section: GitHub's anchor of its `## <name>` heading.
    pub(crate) fn anchor(&self) -> String {
        self.name.to_lowercase()
    }
}

/// How a finding reaches a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Paging {
    /// The alerts that fire under the finding's own condition (empty: none
    /// pages; the finding is on the page, in `diagnose` and in `eks_ipam_finding`).
    pub(crate) alerts: &'static [Alert],
    /// Anchor in `docs/runbook.md`.
    pub(crate) runbook_anchor: String,
}

impl Paging {
    pub(crate) fn runbook_url(&self) -> String {
        format!("{RUNBOOK_URL}#{}", self.runbook_anchor)
    }
}

const fn alert(name: &'static str, severity: Severity) -> Alert {
    Alert { name, severity }
}

const NODE_PODS_WAITING: Alert = alert("EksIpamNodePodsWaitingForIp", Severity::Critical);
const STALLED: Alert = alert("EksIpamIpamdAllocationStalled", Severity::Critical);
const OVERCOMMITTED: Alert = alert("EksIpamPodCapacityOvercommitted", Severity::Warning);
const MIN_WITHOUT_WARM: Alert = alert(
    "EksIpamMinimumIpTargetWithoutWarmIpTarget",
    Severity::Warning,
);
const RESERVED_ENIS: Alert = alert("EksIpamKarpenterReservedEnisMissing", Severity::Warning);
const SUBNET_LOW: Alert = alert("EksIpamSubnetIpsLow", Severity::Warning);
const SUBNET_EXHAUSTED: Alert = alert("EksIpamSubnetIpsExhausted", Severity::Critical);
const SUBNET_NO_PREFIX: Alert = alert("EksIpamSubnetNoFreePrefix", Severity::Warning);
const ZONE_LOW: Alert = alert("EksIpamZonePodIpsLow", Severity::Warning);
const ZONE_EXHAUSTED: Alert = alert("EksIpamZonePodIpsExhausted", Severity::Critical);
const VPC_RESOURCE: Alert = alert("EksIpamVpcResourceExhausted", Severity::Warning);
const VPC_UNSCHEDULABLE: Alert =
    alert("EksIpamPodsUnschedulableForVpcResource", Severity::Critical);
const AUTO_MODE: Alert = alert("EksIpamAutoModeIpamUnhealthy", Severity::Critical);
const ENICONFIG_MISSING: Alert = alert("EksIpamEniConfigMissing", Severity::Critical);

/// The alerts for one finding, and its runbook section.
pub(crate) fn paging(f: &Finding) -> Paging {
    use FindingCode as C;
    let alerts: &'static [Alert] = match (f.code, f.severity) {
        (C::MinimumIpTargetWithoutWarmIpTarget, _) => &[MIN_WITHOUT_WARM],
        (C::PodCapacityExceedsIpCapacity, _) => &[OVERCOMMITTED],
        (C::KarpenterReservedEnisMissing, _) => &[RESERVED_ENIS],
        (C::IpamdAllocationStalled, _) => &[STALLED],
        // Only with pods waiting on the node (the finding's condition).
        (C::EniLimitReached, _) => &[NODE_PODS_WAITING],
        (C::SubnetIpsLow, _) => &[SUBNET_LOW],
        (C::SubnetIpsExhausted, _) => &[SUBNET_EXHAUSTED],
        (C::SubnetNoFreePrefix, _) => &[SUBNET_NO_PREFIX],
        (C::ZonePodIpsLow, _) => &[ZONE_LOW],
        (C::ZonePodIpsExhausted, _) => &[ZONE_EXHAUSTED],
        (C::EniConfigMissing, _) => &[ENICONFIG_MISSING],
        (C::AutoModeIpamUnhealthy, _) => &[AUTO_MODE],
        // The resource controller's trunk/branch failures: no rule reads them yet.
        (C::BranchEniExhausted, _) if f.evidence.contains_key("resource_controller_events") => &[],
        (C::BranchEniExhausted | C::WindowsPodIpsExhausted, Severity::Critical) => {
            &[VPC_RESOURCE, VPC_UNSCHEDULABLE]
        }
        (C::BranchEniExhausted | C::WindowsPodIpsExhausted, _) => &[VPC_RESOURCE],
        (C::IpProvisioningDisabled | C::SettingUnresolved, _) => &[],
    };
    let runbook_anchor = match (alerts.first(), f.code) {
        (Some(a), _) => a.anchor(),
        (None, C::BranchEniExhausted) => VPC_RESOURCE.anchor(),
        (None, code) => code.as_str().to_lowercase(),
    };
    Paging {
        alerts,
        runbook_anchor,
    }
}

/// Every alert the table names (for the tests against the rules file).
#[cfg(test)]
pub(crate) const ALL_ALERTS: &[Alert] = &[
    NODE_PODS_WAITING,
    STALLED,
    OVERCOMMITTED,
    MIN_WITHOUT_WARM,
    RESERVED_ENIS,
    SUBNET_LOW,
    SUBNET_EXHAUSTED,
    SUBNET_NO_PREFIX,
    ZONE_LOW,
    ZONE_EXHAUSTED,
    VPC_RESOURCE,
    VPC_UNSCHEDULABLE,
    AUTO_MODE,
    ENICONFIG_MISSING,
];

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = include_str!("../../deploy/rules/eks-ipam-exporter.rules.yaml");
    const RUNBOOK: &str = include_str!("../../docs/runbook.md");

    /// The rules file's alerts: name -> (severity, runbook_url), read
    /// line by line (the file keeps one `- alert:` block per alert).
    fn rules() -> std::collections::BTreeMap<String, (String, String)> {
        let mut out = std::collections::BTreeMap::new();
        let mut name: Option<String> = None;
        let mut severity = String::new();
        for line in RULES.lines() {
            let t = line.trim();
            if let Some(n) = t.strip_prefix("- alert: ") {
                name = Some(n.to_string());
            } else if let Some(s) = t.strip_prefix("severity: ") {
                severity = s.to_string();
            } else if let Some(u) = t.strip_prefix("runbook_url: ") {
                if let Some(n) = name.take() {
                    out.insert(n, (severity.clone(), u.to_string()));
                }
            }
        }
        out
    }

    fn runbook_anchors() -> Vec<String> {
        RUNBOOK
            .lines()
            .filter_map(|l| l.strip_prefix("## ").or_else(|| l.strip_prefix("### ")))
            .map(|h| {
                h.trim()
                    .to_lowercase()
                    .chars()
                    .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
                    .map(|c| if c == ' ' { '-' } else { c })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn every_alert_named_exists_with_that_severity_and_runbook() {
        let rules = rules();
        assert!(rules.len() >= 15, "parsed too few alerts: {rules:?}");
        for a in ALL_ALERTS {
            let (sev, url) = rules
                .get(a.name)
                .unwrap_or_else(|| panic!("{} is not in the rules file", a.name));
            assert_eq!(sev, a.severity.as_str(), "{}", a.name);
            assert_eq!(url, &format!("{RUNBOOK_URL}#{}", a.anchor()), "{}", a.name);
        }
    }

    fn finding(code: FindingCode, severity: Severity) -> Finding {
        Finding {
            code,
            severity,
            node: "n1".into(),
            subnet_id: String::new(),
            availability_zone: String::new(),
            summary: String::new(),
            remediation: String::new(),
            evidence: Default::default(),
        }
    }

    /// The severity a finding shows is the worst severity it pages with;
    /// a finding no alert reads is info, or says on the page that nothing pages.
    #[test]
    fn a_findings_severity_is_its_alerts_severity() {
        // Every (code, severity) the rules in findings.rs emit.
        use FindingCode as C;
        use Severity::*;
        let emitted = [
            (C::MinimumIpTargetWithoutWarmIpTarget, Warning),
            (C::PodCapacityExceedsIpCapacity, Warning),
            (C::KarpenterReservedEnisMissing, Warning),
            (C::IpamdAllocationStalled, Critical),
            (C::EniLimitReached, Critical),
            (C::SubnetIpsLow, Warning),
            (C::SubnetIpsExhausted, Critical),
            (C::SubnetNoFreePrefix, Warning),
            (C::ZonePodIpsLow, Warning),
            (C::ZonePodIpsExhausted, Critical),
            (C::EniConfigMissing, Critical),
            (C::BranchEniExhausted, Warning),
            (C::BranchEniExhausted, Critical),
            (C::WindowsPodIpsExhausted, Warning),
            (C::WindowsPodIpsExhausted, Critical),
            (C::AutoModeIpamUnhealthy, Critical),
            (C::IpProvisioningDisabled, Info),
            (C::SettingUnresolved, Info),
        ];
        for (code, sev) in emitted {
            let p = paging(&finding(code, sev));
            let worst = p.alerts.iter().map(|a| a.severity).max();
            match worst {
                Some(w) => assert_eq!(w, sev, "{code:?} {sev:?} pages as {:?}", p.alerts),
                None => assert_eq!(sev, Info, "{code:?} {sev:?}: nothing pages on it"),
            }
        }
    }

    #[test]
    fn every_runbook_anchor_exists() {
        let anchors = runbook_anchors();
        for code in crate::model::findings::ALL_CODES {
            for sev in [Severity::Info, Severity::Warning, Severity::Critical] {
                let mut f = finding(*code, sev);
                let p = paging(&f);
                assert!(
                    anchors.contains(&p.runbook_anchor),
                    "{code:?}: #{} missing",
                    p.runbook_anchor
                );
                f.evidence
                    .insert("resource_controller_events".into(), serde_json::json!([]));
                let p = paging(&f);
                assert!(
                    anchors.contains(&p.runbook_anchor),
                    "{code:?}: #{} missing",
                    p.runbook_anchor
                );
            }
        }
    }

    #[test]
    fn resource_controller_failures_page_nowhere_yet() {
        let mut f = finding(FindingCode::BranchEniExhausted, Severity::Critical);
        assert_eq!(paging(&f).alerts, &[VPC_RESOURCE, VPC_UNSCHEDULABLE]);
        f.evidence
            .insert("resource_controller_events".into(), serde_json::json!([]));
        assert!(paging(&f).alerts.is_empty());
        assert_eq!(paging(&f).runbook_anchor, "eksipamvpcresourceexhausted");
    }
}
