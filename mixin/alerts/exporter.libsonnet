// The exporter itself: a failing collector, a target that is down or missing.
local alert = import '../lib/alert.libsonnet';

function(config)
  // One selector when both roles share it (the default), else one per role, so that either role
  // missing entirely also fires.
  local selectors =
    if config.clusterRoleSelector == config.nodeAgentSelector then [config.clusterRoleSelector]
    else [config.clusterRoleSelector, config.nodeAgentSelector];
  // 'job=~"REGEX"' reads as: whose job matches "REGEX"; any other selector is quoted as it is.
  local describe(s) =
    local prefix = 'job=~"';
    if std.startsWith(s, prefix) && std.endsWith(s, '"') && std.length(std.split(s, ',')) == 1 then
      'whose job matches "' + std.substr(s, std.length(prefix), std.length(s) - std.length(prefix) - 1) + '"'
    else 'matching {' + s + '}';
  [
    alert(
      config,
      'EksIpamCollectorDown',
      'warning',
      'eks_ipam_collector_up == 0',
      'eks-ipam-exporter collector {{ $labels.collector }} is failing',
      |||
        The {{ $labels.collector }} collector of {{ $labels.job }} ({{ $labels.instance }}) has failed for <<for>>{{ with printf "time() - eks_ipam_collector_last_success_timestamp_seconds{job=%q,instance=%q,collector=%q}" $labels.job $labels.instance $labels.collector | query }};
        its last success was {{ . | first | value | humanizeDuration }} ago{{ else }} and has not succeeded since the exporter started{{ end }}.
        Metrics that depend on it are absent or stale, so the IP alerts that use them cannot fire.
      |||,
    ),

    // Scrape-job assumption: the selectors of _config (default: every job whose name contains
    // eks-ipam-exporter, which the ServiceMonitor/PodMonitor of deploy/ produce). `absent()` has
    // no cluster label: in a multi-cluster Prometheus it fires only when no cluster has a target.
    alert(
      config,
      'EksIpamExporterDown',
      'critical',
      std.join(' or ', ['up{%s} == 0' % s for s in selectors] + ['absent(up{%s})' % s for s in selectors]),
      'eks-ipam-exporter is down{{ with index $labels "instance" }} ({{ . }}){{ end }}',
      |||
        {{ if index $labels "instance" }}Prometheus has failed to scrape {{ $labels.job }} target {{ $labels.instance }} for <<for>>.{{ else }}Prometheus has no scrape target <<which>>.{{ end }}
        Pod-IP exhaustion on EKS is not being watched: the other eks-ipam alerts cannot fire.
      |||,
    ) + {
      annotations+: {
        description: std.strReplace(super.description, '<<which>>', std.join(', or none ', [describe(s) for s in selectors])),
      },
    },
  ]
