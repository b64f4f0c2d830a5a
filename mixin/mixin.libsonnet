// eks-ipam-exporter monitoring mixin: Prometheus alerts, recording rules and Grafana dashboards
// for pod-IP exhaustion on Amazon EKS (mixin/README.md).
//
//   prometheusAlerts           { groups: [ '<ruleGroupName>.alerts' ] }   the alerting rules
//   prometheusRules            { groups: [ '<ruleGroupName>.rules' ] }    the recording rules
//   grafanaDashboards          { 'eks-ipam-overview.json': ..., 'eks-ipam-node.json': ... }
//   prometheusRulesAndAlerts   { groups: [ '<ruleGroupName>' ] }          both in one group, records
//                                                                         first: what deploy/ ships
//
// The one group is what the project ships and tests: rules in one group run in order, so each
// alert sees the recorded series of the same evaluation. Rendered as two groups (the usual mixin
// layout, e.g. by mixtool) they run concurrently and an alert may see a record one evaluation
// interval late; no alert here depends on that interval. Use one form or the other, not both.
(import 'config.libsonnet')
+ (import 'rules/rules.libsonnet')
+ (import 'alerts/alerts.libsonnet')
+ (import 'dashboards/dashboards.libsonnet')
+ {
  prometheusRulesAndAlerts:: {
    groups: [
      {
        name: $._config.ruleGroupName,
        rules: $.eksIpamRecordingRules($._config) + $.eksIpamAlertingRules($._config),
      },
    ],
  },
}
