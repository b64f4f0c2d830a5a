//! Prometheus text exposition of a [`View`], written directly from the
//! snapshot (no registry: series for objects that are gone simply are not
//! written). Label values are node/subnet names or closed sets.

use crate::health::CollectorStatus;
use crate::model::state::VpcResource;
use crate::model::view::View;
use crate::render::catalogue::{self, MetricDef};
use std::fmt::Write;

/// Escapes a label value: backslash, double quote and newline.
pub fn escape_label_value(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn write_value(v: f64, out: &mut String) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

/// One metric family being written; HELP/TYPE appear only if it has samples.
pub(crate) struct Family {
    def: &'static MetricDef,
    body: String,
}

impl Family {
    pub(crate) fn new(def: &'static MetricDef) -> Self {
        Family {
            def,
            body: String::new(),
        }
    }

    pub(crate) fn sample(&mut self, labels: &[(&str, &str)], value: f64) {
        debug_assert!(
            labels
                .iter()
                .map(|(k, _)| *k)
                .eq(self.def.labels.iter().copied()),
            "{}: labels {labels:?} differ from the catalogue's {:?}",
            self.def.name,
            self.def.labels
        );
        self.body.push_str(self.def.name);
        if !labels.is_empty() {
            self.body.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.body.push(',');
                }
                self.body.push_str(k);
                self.body.push_str("=\"");
                escape_label_value(v, &mut self.body);
                self.body.push('"');
            }
            self.body.push('}');
        }
        self.body.push(' ');
        write_value(value, &mut self.body);
        self.body.push('\n');
    }

    pub(crate) fn finish(self, out: &mut String) {
        if self.body.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP {} {}", self.def.name, self.def.help);
        let _ = writeln!(out, "# TYPE {} {}", self.def.name, self.def.kind.as_str());
        out.push_str(&self.body);
    }
}

fn b(v: bool) -> f64 {
    if v {
        1.0
    } else {
        0.0
    }
}

/// Renders the view and the collector statuses.
pub fn render(view: &View, collectors: &[CollectorStatus], out: &mut String) {
    let mut info = Family::new(&catalogue::NODE_INFO);
    let mut cap = Family::new(&catalogue::NODE_POD_IP_CAPACITY);
    let mut maxp = Family::new(&catalogue::NODE_MAX_PODS);
    let mut kexp = Family::new(&catalogue::NODE_KARPENTER_EXPECTED_MAX_PODS);
    let mut over = Family::new(&catalogue::NODE_POD_IP_OVERCOMMIT);
    let mut pods = Family::new(&catalogue::NODE_PODS);
    let mut waiting = Family::new(&catalogue::NODE_PODS_WAITING_FOR_IP);
    let mut ips = Family::new(&catalogue::NODE_IPS);
    let mut enis = Family::new(&catalogue::NODE_ENIS);
    let mut enis_max = Family::new(&catalogue::NODE_ENIS_MAX);
    let mut blocked = Family::new(&catalogue::NODE_IP_GROWTH_BLOCKED);
    let mut card_cap = Family::new(&catalogue::NODE_NETWORK_CARD_POD_IP_CAPACITY);
    let mut card_ips = Family::new(&catalogue::NODE_NETWORK_CARD_IPS);
    let mut card_blocked = Family::new(&catalogue::NODE_NETWORK_CARD_IP_GROWTH_BLOCKED);
    let mut target = Family::new(&catalogue::NODE_CNI_TARGET);
    let mut resource = Family::new(&catalogue::NODE_RESOURCE);
    let mut last = Family::new(&catalogue::API_CALL_LAST_TIMESTAMP);
    let mut silence = Family::new(&catalogue::API_CALL_SILENCE);

    for n in &view.nodes {
        let node = n.name.as_str();
        info.sample(
            &[
                ("node", node),
                ("instance_type", n.instance_type.as_deref().unwrap_or("")),
                ("zone", n.zone.as_deref().unwrap_or("")),
                ("nodepool", n.nodepool.as_deref().unwrap_or("")),
                ("compute_type", n.compute_type.as_str()),
                ("os", n.os.as_str()),
                ("ip_family", n.ip_family.as_str()),
            ],
            1.0,
        );
        let l = [("node", node)];
        if let Some(v) = n.pod_ip_capacity {
            cap.sample(&l, f64::from(v));
        }
        if let Some(v) = n.max_pods {
            maxp.sample(&l, f64::from(v));
        }
        if let Some(v) = n.karpenter_expected_max_pods {
            kexp.sample(&l, f64::from(v));
        }
        if let Some(v) = n.pod_ip_overcommit {
            over.sample(&l, v as f64);
        }
        if let (Some(p), Some(h)) = (n.pods_pod_network, n.pods_host_network) {
            pods.sample(&[("node", node), ("network", "pod")], f64::from(p));
            pods.sample(&[("node", node), ("network", "host")], f64::from(h));
        }
        if let Some(v) = n.pods_waiting_for_ip {
            waiting.sample(&l, f64::from(v));
        }
        if let Some(i) = n.ips {
            ips.sample(
                &[("node", node), ("state", "assigned")],
                f64::from(i.assigned),
            );
            ips.sample(
                &[("node", node), ("state", "available")],
                f64::from(i.available),
            );
            ips.sample(
                &[("node", node), ("state", "cooldown")],
                f64::from(i.cooldown),
            );
        }
        if let Some(v) = n.enis {
            enis.sample(&l, f64::from(v));
        }
        if let Some(v) = n.enis_max {
            enis_max.sample(&l, f64::from(v));
        }
        if let Some(v) = n.ip_growth_blocked {
            blocked.sample(&l, b(v));
        }
        for c in &n.network_cards {
            let index = c.index.to_string();
            let l = [("node", node), ("network_card", index.as_str())];
            if let Some(v) = c.pod_ip_capacity {
                card_cap.sample(&l, f64::from(v));
            }
            for (state, v) in [
                ("assigned", c.ips.assigned),
                ("available", c.ips.available),
                ("cooldown", c.ips.cooldown),
            ] {
                card_ips.sample(&[l[0], l[1], ("state", state)], f64::from(v));
            }
            if let Some(g) = c.growth_at_zero_free {
                card_blocked.sample(&l, b(g.blocked()));
            }
        }
        for (name, v) in [
            ("warm_ip", n.warm_ip_target),
            ("minimum_ip", n.minimum_ip_target),
            ("warm_eni", n.warm_eni_target),
            ("warm_prefix", n.warm_prefix_target),
        ] {
            if let Some(v) = v {
                target.sample(&[("node", node), ("target", name)], f64::from(v));
            }
        }
        for r in VpcResource::ALL {
            let u = n.vpc_resources.get(r);
            if let Some(a) = u.allocatable {
                resource.sample(
                    &[
                        ("node", node),
                        ("resource", r.name()),
                        ("state", "allocatable"),
                    ],
                    f64::from(a),
                );
            }
            if let Some(q) = u.requested.filter(|q| u.allocatable.is_some() || *q > 0) {
                resource.sample(
                    &[
                        ("node", node),
                        ("resource", r.name()),
                        ("state", "requested"),
                    ],
                    f64::from(q),
                );
            }
        }
        for c in &n.api_calls {
            if let Some(t) = c.last_timestamp {
                last.sample(&[("operation", c.operation), ("node", node)], t);
            }
            if let Some(s) = c.silence_seconds {
                silence.sample(&[("operation", c.operation), ("node", node)], s);
            }
        }
    }
    for f in [
        info,
        cap,
        maxp,
        kexp,
        over,
        pods,
        waiting,
        ips,
        enis,
        enis_max,
        blocked,
        card_cap,
        card_ips,
        card_blocked,
        target,
        resource,
        last,
        silence,
    ] {
        f.finish(out);
    }

    let c = &view.cluster;
    let mut unschedulable = Family::new(&catalogue::PODS_UNSCHEDULABLE);
    if let Some(u) = c.pods_unschedulable {
        for r in VpcResource::ALL {
            unschedulable.sample(&[("resource", r.name())], f64::from(*u.get(r)));
        }
    }
    unschedulable.finish(out);
    let mut reserved = Family::new(&catalogue::KARPENTER_RESERVED_ENIS);
    if let Some(v) = c.karpenter_reserved_enis {
        reserved.sample(&[], f64::from(v));
    }
    reserved.finish(out);
    let mut custom = Family::new(&catalogue::CNI_CUSTOM_NETWORKING);
    if let Some(v) = c.custom_networking {
        custom.sample(&[], b(v));
    }
    custom.finish(out);
    let mut prefix = Family::new(&catalogue::CNI_PREFIX_DELEGATION);
    if let Some(v) = c.prefix_delegation {
        prefix.sample(&[], b(v));
    }
    prefix.finish(out);

    let mut calls = Family::new(&catalogue::API_CALLS);
    for a in &view.api_calls {
        calls.sample(
            &[("operation", a.operation), ("error_code", a.error_code)],
            a.count as f64,
        );
    }
    calls.finish(out);
    let mut lag = Family::new(&catalogue::CLOUDTRAIL_LAG);
    if let Some(v) = c.cloudtrail_lag_seconds {
        lag.sample(&[], v);
    }
    lag.finish(out);

    let mut avail = Family::new(&catalogue::SUBNET_AVAILABLE_IPS);
    let mut size = Family::new(&catalogue::SUBNET_SIZE_IPS);
    let mut free28 = Family::new(&catalogue::SUBNET_FREE_PREFIXES);
    for s in &view.subnets {
        let l = [
            ("subnet_id", s.id.as_str()),
            ("availability_zone", s.zone.as_deref().unwrap_or("")),
            ("role", s.role.as_str()),
        ];
        avail.sample(&l, s.available_ips as f64);
        if let Some(v) = s.size_ips {
            size.sample(&l, v as f64);
        }
        if let Some(v) = s.free_prefixes {
            free28.sample(&l, v as f64);
        }
    }
    for f in [avail, size, free28] {
        f.finish(out);
    }
    let mut info = Family::new(&catalogue::SUBNET_INFO);
    let mut candidates = Family::new(&catalogue::SUBNET_ZONE_CANDIDATES);
    for s in &view.subnets {
        let zone = s.zone.as_deref().unwrap_or("");
        info.sample(
            &[
                ("subnet_id", s.id.as_str()),
                ("availability_zone", zone),
                ("cni_use", s.cni_use.as_str()),
            ],
            1.0,
        );
        candidates.sample(
            &[("subnet_id", s.id.as_str()), ("availability_zone", zone)],
            f64::from(s.zone_candidates),
        );
    }
    info.finish(out);
    candidates.finish(out);
    let mut holders = Family::new(&catalogue::SUBNET_IPS);
    let mut prefix_reserved = Family::new(&catalogue::SUBNET_PREFIX_RESERVED_FREE_IPS);
    for s in &view.subnets {
        if let Some(h) = &s.holders {
            for (holder, v) in h.samples() {
                holders.sample(
                    &[("subnet_id", s.id.as_str()), ("holder", holder)],
                    v as f64,
                );
            }
        }
        if let Some(v) = s.prefix_reserved_free_ips {
            prefix_reserved.sample(&[("subnet_id", s.id.as_str())], v as f64);
        }
    }
    holders.finish(out);
    prefix_reserved.finish(out);
    let mut zone_avail = Family::new(&catalogue::ZONE_POD_IPS_AVAILABLE);
    let mut zone_size = Family::new(&catalogue::ZONE_POD_IPS_SIZE);
    let mut zone_subnets = Family::new(&catalogue::ZONE_POD_IP_SUBNETS);
    let mut zone_prefixes = Family::new(&catalogue::ZONE_FREE_PREFIXES);
    for z in &view.zones {
        let l = [("availability_zone", z.zone.as_str())];
        zone_avail.sample(&l, z.available_ips as f64);
        if let Some(v) = z.size_ips {
            zone_size.sample(&l, v as f64);
        }
        zone_subnets.sample(&l, z.subnets.len() as f64);
        if let Some(v) = z.free_prefixes {
            zone_prefixes.sample(&l, v as f64);
        }
    }
    for f in [zone_avail, zone_size, zone_subnets, zone_prefixes] {
        f.finish(out);
    }

    let mut findings = Family::new(&catalogue::FINDING);
    for f in &view.findings {
        findings.sample(
            &[
                ("code", f.code.as_str()),
                ("severity", f.severity.as_str()),
                ("node", f.node.as_str()),
                ("subnet_id", f.subnet_id.as_str()),
                ("availability_zone", f.availability_zone.as_str()),
            ],
            1.0,
        );
    }
    findings.finish(out);

    render_collectors(collectors, out);
}

/// Self-metrics shared by both roles.
pub(crate) fn render_collectors(collectors: &[CollectorStatus], out: &mut String) {
    let mut up = Family::new(&catalogue::COLLECTOR_UP);
    let mut last = Family::new(&catalogue::COLLECTOR_LAST_SUCCESS);
    let mut dur = Family::new(&catalogue::COLLECTOR_DURATION);
    for c in collectors {
        let l = [("collector", c.collector)];
        up.sample(&l, b(c.up));
        if let Some(t) = c.last_success_unix {
            last.sample(&l, t);
        }
        dur.sample(&l, c.duration_seconds);
    }
    let mut errs = Family::new(&catalogue::COLLECTOR_ERRORS);
    for c in collectors {
        for (kind, n) in &c.errors {
            errs.sample(&[("collector", c.collector), ("kind", kind)], *n as f64);
        }
    }
    let mut reqs = Family::new(&catalogue::COLLECTOR_REQUESTS);
    for c in collectors
        .iter()
        .filter(|c| matches!(c.collector, "ec2" | "cloudtrail"))
    {
        reqs.sample(&[("collector", c.collector)], c.requests as f64);
    }
    for f in [up, last, dur, errs, reqs] {
        f.finish(out);
    }
    let mut build = Family::new(&catalogue::BUILD_INFO);
    build.sample(&[("version", crate::VERSION)], 1.0);
    build.finish(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Per-card series exist only where ipamd manages more than one card,
    /// and sum to the node's.
    #[test]
    fn network_card_series_on_multi_card_nodes_only() {
        use crate::model::findings::Thresholds;
        use crate::model::fixtures::*;
        let c = Cluster::new()
            .aws_node(&[("ENABLE_MULTI_NIC", "true")])
            .node(
                Node::new("multi", "c6in.32xlarge", 345).pool(
                    Pool::new()
                        .eni(true, 49, 10)
                        .card(1, Pool::new().eni(false, 3, 1)),
                ),
            )
            .node(Node::new("single", "m5.large", 29).pool(Pool::new().eni(true, 9, 3)));
        let view = crate::model::view::build(&c.state, &Thresholds::default());
        let mut out = String::new();
        render(&view, &[], &mut out);
        let line = |prefix: &str| {
            out.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("{prefix} missing in\n{out}"))
                .to_string()
        };
        assert_eq!(
            line("eks_ipam_node_network_card_pod_ip_capacity{node=\"multi\",network_card=\"1\"}"),
            "eks_ipam_node_network_card_pod_ip_capacity{node=\"multi\",network_card=\"1\"} 392"
        );
        assert_eq!(
            line("eks_ipam_node_network_card_ips{node=\"multi\",network_card=\"1\",state=\"available\"}"),
            "eks_ipam_node_network_card_ips{node=\"multi\",network_card=\"1\",state=\"available\"} 2"
        );
        assert_eq!(
            line("eks_ipam_node_ips{node=\"multi\",state=\"assigned\"}"),
            "eks_ipam_node_ips{node=\"multi\",state=\"assigned\"} 11"
        );
        assert_eq!(
            line("eks_ipam_node_pod_ip_capacity{node=\"multi\"}"),
            "eks_ipam_node_pod_ip_capacity{node=\"multi\"} 784"
        );
        assert!(
            !out.contains("network_card{node=\"single\"")
                && !out.contains("{node=\"single\",network_card"),
            "{out}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut s = String::new();
        escape_label_value("a\"b\\c\nd<script>", &mut s);
        assert_eq!(s, "a\\\"b\\\\c\\nd<script>");
    }

    #[test]
    fn values_format_like_prometheus() {
        let f = |v: f64| {
            let mut s = String::new();
            write_value(v, &mut s);
            s
        };
        assert_eq!(f(17.0), "17");
        assert_eq!(f(-5.0), "-5");
        assert_eq!(f(0.1), "0.1");
        assert_eq!(f(1_787_218_867.5), "1787218867.5");
        assert_eq!(f(f64::NAN), "NaN");
        assert_eq!(f(f64::INFINITY), "+Inf");
    }

    #[test]
    fn empty_families_are_omitted() {
        let mut out = String::new();
        Family::new(&catalogue::NODE_ENIS).finish(&mut out);
        assert!(out.is_empty());
        let mut fam = Family::new(&catalogue::NODE_ENIS);
        fam.sample(&[("node", "a")], 1.0);
        fam.finish(&mut out);
        assert_eq!(
            out,
            format!(
                "# HELP eks_ipam_node_enis {}\n# TYPE eks_ipam_node_enis gauge\neks_ipam_node_enis{{node=\"a\"}} 1\n",
                catalogue::NODE_ENIS.help
            )
        );
    }

    #[test]
    #[should_panic(expected = "differ from the catalogue")]
    #[cfg(debug_assertions)]
    fn a_sample_with_labels_the_catalogue_does_not_list_is_refused() {
        let mut fam = Family::new(&catalogue::NODE_ENIS);
        fam.sample(&[("node", "a"), ("extra", "b")], 1.0);
    }
}
