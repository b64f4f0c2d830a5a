// What tools/gen_deploy.py renders into deploy/ and dashboards/:
//   jsonnet -J mixin mixin/build.jsonnet
// `config` (a top-level argument) is merged into _config, e.g.
//   jsonnet --tla-code "config={clusterLabel: 'k8s_cluster'}" mixin/build.jsonnet
function(config={})
  local mixin = (import 'mixin.libsonnet') + { _config+:: config };
  {
    rules: mixin.prometheusRulesAndAlerts,
    dashboards: mixin.grafanaDashboards,
  }
