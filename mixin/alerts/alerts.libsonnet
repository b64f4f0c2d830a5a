// Alerting rules. Names and severities are a contract (docs/design.md section 6); every alert
// has promtool unit tests in tests/rules/ that check it just before and exactly at its `for:`
// boundary, and a section in docs/runbook.md (its runbook_url, from _config.runbookURLPattern).
{
  // In this order in the rule file.
  eksIpamAlertingRules(config)::
    (import 'node.libsonnet')(config)
    + (import 'settings.libsonnet')(config)
    + (import 'subnet.libsonnet')(config)
    + (import 'shapes.libsonnet')(config)
    + (import 'api.libsonnet')(config)
    + (import 'exporter.libsonnet')(config),

  prometheusAlerts+:: {
    groups+: [
      {
        name: $._config.ruleGroupName + '.alerts',
        rules: $.eksIpamAlertingRules($._config),
      },
    ],
  },
}
