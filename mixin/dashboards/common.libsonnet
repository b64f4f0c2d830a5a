// What both dashboards share: uids, the cluster/job selection, variables, value mappings.
local g = import '../lib/grafana.libsonnet';

function(config) {
  overviewUid:: 'eks-ipam-overview',
  nodeUid:: 'eks-ipam-node',

  // The label matchers every panel query carries: the selected cluster(s) and exporter job(s).
  matchers:: '%s=~"$cluster", job=~"$job"' % config.clusterLabel,
  // metric{<matchers>[, extra]}
  m(metric, extra='')::
    metric + '{' + self.matchers + (if extra == '' then '' else ', ' + extra) + '}',
  // on (<cluster label>, labels...)
  on(labels):: 'on (' + std.join(', ', [config.clusterLabel] + labels) + ')',

  // Variables. `cluster`: single choice, "All" matches every cluster and series without the label
  // (a single-cluster Prometheus has no values, so All is all there is). `job`: the exporter's
  // scrape jobs (both roles) in that cluster, from `up` so that a job whose targets are all down
  // still shows; "All" is every job listed.
  variables:: {
    datasource: g.datasourceVariable(),
    cluster: g.queryVariable(
      'cluster',
      'Cluster',
      'label_values(%s, %s)' % [config.clusterVariableMetric, config.clusterLabel],
      includeAll=true,
      allValue='.*',
    ),
    local selectors =
      if config.clusterRoleSelector == config.nodeAgentSelector then [config.clusterRoleSelector]
      else [config.clusterRoleSelector, config.nodeAgentSelector],
    local inCluster(s) = 'up{%s=~"$cluster", %s}' % [config.clusterLabel, s],
    job:
      if std.length(selectors) == 1 then
        g.queryVariable('job', 'Job', 'label_values(%s, job)' % inCluster(selectors[0]), includeAll=true, multi=true)
      else
        g.queryVariable(
          'job',
          'Job',
          'query_result(group by (job) (%s))' % std.join(' or ', [inCluster(s) for s in selectors]),
          qryType=3,
          includeAll=true,
          multi=true,
          regex='/job="([^"]+)"/',
        ),
  },

  // The node drill-down, for a table's node column: keeps the data source, cluster and job.
  nodeLink:: '/d/' + self.nodeUid + '/eks-ipam-node?${datasource:queryparam}&${cluster:queryparam}&${job:queryparam}&var-node=${__value.raw}',
  nodeColumnLink:: g.byName('node', [g.prop('links', [{ title: 'Open the node drill-down', url: $.nodeLink }])]),
  severityColors:: g.byName('severity', [
    g.prop('mappings', g.valueMap([['critical', 'critical', 'red'], ['warning', 'warning', 'orange'], ['info', 'info', 'blue']])),
    g.prop('custom.cellOptions', { type: 'color-background' }),
  ]),
  onOff:: g.valueMap([['0', 'off', 'text'], ['1', 'on', 'blue']]),
  yesNoBad:: g.valueMap([['0', 'no', 'green'], ['1', 'BLOCKED', 'red']]),
  upDown:: g.valueMap([['0', 'DOWN', 'red'], ['1', 'up', 'green']]),
}
