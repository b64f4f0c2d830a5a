// The Grafana dashboards. File names and uids are stable: saved links and the node drill-down
// link point at them.
{
  grafanaDashboards+:: {
    'eks-ipam-overview.json': (import 'overview.libsonnet')($._config),
    'eks-ipam-node.json': (import 'node.libsonnet')($._config),
  },
}
