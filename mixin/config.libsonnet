// Settings of the eks-ipam-exporter mixin. Override any of them with
//   (import 'eks-ipam-exporter-mixin/mixin.libsonnet') + { _config+:: { clusterLabel: 'k8s_cluster' } }
// (mixin/README.md). The defaults produce exactly the rules and dashboards shipped in deploy/ and
// dashboards/.
{
  _config+:: {
    // Label that tells clusters apart where one Prometheus, Thanos or Amazon Managed Service for
    // Prometheus workspace holds several clusters (usually an external label). Every `on (...)`
    // join of the rules and dashboards includes it, the alert annotations' queries select the
    // alert's own cluster, and the dashboards get a `cluster` variable on it. Series without the
    // label (a single-cluster Prometheus) still join and still show.
    clusterLabel: 'cluster',

    // The exporter's scrape jobs, as PromQL label matchers (without braces).
    //   clusterRoleSelector: the `cluster` role (Deployment); deploy/'s ServiceMonitor gives it the
    //                        job `eks-ipam-exporter` (the Service's name).
    //   nodeAgentSelector:   the `node` agents (DaemonSet); deploy/'s PodMonitor gives them the job
    //                        `<namespace>/eks-ipam-exporter-node`.
    // Both default to the one regex the rules have always used, which matches both roles and any
    // hand-written job whose name contains eks-ipam-exporter. Used by EksIpamExporterDown (with two
    // different selectors it also fires when either role has no target at all) and by the
    // dashboards' `job` variable.
    clusterRoleSelector: 'job=~".*eks-ipam-exporter.*"',
    nodeAgentSelector: 'job=~".*eks-ipam-exporter.*"',

    // runbook_url of every alert: the pattern with %s replaced by the lower-cased alert name (the
    // anchor of its section in docs/runbook.md). Point it at your own copy of the runbook if you
    // keep one.
    runbookURLPattern: 'https://github.com/eks-ipam-exporter/eks-ipam-exporter/blob/main/docs/runbook.md#%s',

    // Name of the rule group. prometheusRulesAndAlerts (what deploy/ ships) is one group of this
    // name; prometheusRules and prometheusAlerts use '<name>.rules' and '<name>.alerts'.
    ruleGroupName: 'eks-ipam-exporter',

    // Thresholds (docs/runbook.md "Thresholds and why"). Two of them mirror flags of the exporter,
    // whose own findings use the same numbers: change both together.
    //   allocationSilenceThresholdSeconds = `cluster --silence-window` (default 20m):
    //       EksIpamIpamdAllocationStalled, and the red line of the dashboards' silence panels.
    //   subnetLowFreeRatio = `cluster --subnet-low-ratio` (default 0.1): EksIpamSubnetIpsLow and
    //       EksIpamZonePodIpsLow fire below this free fraction or below subnetLowMinFreeIps free IPs,
    //       whichever is larger.
    allocationSilenceThresholdSeconds: 1200,
    subnetLowFreeRatio: 0.10,
    subnetLowMinFreeIps: 32,
    //   ipAssignmentErrorThreshold: failed calls of one EC2 operation and error code within 30
    //       minutes (eks_ipam:api_call_errors:increase30m) that fire EksIpamIpAssignmentErrors.
    ipAssignmentErrorThreshold: 3,

    // `for:` of every alert. The tests in tests/rules/ check the shipped values at their boundary;
    // descriptions that quote the window follow it.
    alertFor: {
      EksIpamNodePodsWaitingForIp: '10m',
      EksIpamIpamdAllocationStalled: '20m',
      EksIpamPodCapacityOvercommitted: '15m',
      EksIpamMinimumIpTargetWithoutWarmIpTarget: '10m',
      EksIpamKarpenterReservedEnisMissing: '10m',
      EksIpamSubnetIpsLow: '15m',
      EksIpamSubnetIpsExhausted: '5m',
      EksIpamSubnetNoFreePrefix: '15m',
      EksIpamZonePodIpsLow: '15m',
      EksIpamZonePodIpsExhausted: '5m',
      EksIpamVpcResourceExhausted: '15m',
      EksIpamPodsUnschedulableForVpcResource: '10m',
      EksIpamAutoModeIpamUnhealthy: '5m',
      EksIpamEniConfigMissing: '5m',
      EksIpamIpAssignmentErrors: '5m',
      EksIpamCollectorDown: '15m',
      EksIpamExporterDown: '5m',
    },

    // Dashboards.
    grafanaDashboardTags: ['eks', 'vpc-cni', 'ipam', 'karpenter', 'eks-ipam-exporter'],
    grafanaRefresh: '1m',
    // Any metric both roles export: the dashboards' `cluster` variable reads its values from it.
    clusterVariableMetric: 'eks_ipam_build_info',
  },
}
