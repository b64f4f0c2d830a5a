// Cluster shapes beyond the classic one (docs/design.md section 8): VPC extended resources
// (security groups for pods, Windows), Auto Mode, custom networking's ENIConfigs.
local alert = import '../lib/alert.libsonnet';

function(config) [
  // Security groups for pods (vpc.amazonaws.com/pod-eni) and Windows pod IPs
  // (vpc.amazonaws.com/PrivateIPv4Address): every unit the node advertises is requested.
  alert(
    config,
    'EksIpamVpcResourceExhausted',
    'warning',
    |||
      eks_ipam_node_resource{state="requested"}
        >= ignoring(state) eks_ipam_node_resource{state="allocatable"}
      and ignoring(state) eks_ipam_node_resource{state="allocatable"} > 0
    |||,
    'Node {{ $labels.node }} has no {{ $labels.resource }} left',
    |||
      All {{ $value | printf "%.0f" }} {{ $labels.resource }} that node {{ $labels.node }} advertises are requested by its pods:
      the scheduler places no further pod that needs one there (security groups for pods need a branch ENI,
      Windows pods an address from the VPC resource controller).
    |||,
  ),

  alert(
    config,
    'EksIpamPodsUnschedulableForVpcResource',
    'critical',
    'eks_ipam_pods_unschedulable > 0',
    '{{ $value | printf "%.0f" }} pod(s) cannot be scheduled: Insufficient {{ $labels.resource }}',
    |||
      {{ $value | printf "%.0f" }} pending pod(s) are refused by the scheduler because no node has a free
      {{ $labels.resource }} (PodScheduled=False, Unschedulable, "Insufficient {{ $labels.resource }}").
      They stay Pending until a node with one frees up or joins.
    |||,
  ),

  // Auto Mode nodes: the EKS node monitoring agent's IPAMD* condition, or an IPAMD* event younger
  // than --silence-window (the exporter's finding).
  alert(
    config,
    'EksIpamAutoModeIpamUnhealthy',
    'critical',
    'max without (severity) (eks_ipam_finding{code="AutoModeIpamUnhealthy"}) == 1',
    'Auto Mode node {{ $labels.node }} reports an IPAM problem',
    |||
      The EKS node monitoring agent on Auto Mode node {{ $labels.node }} reports an IPAMD issue
      (NetworkingReady condition or event: IPAMDNoIPs, IPAMDNotReady, IPAMDNotRunning, ...): pods there may not get IPs.
      kubectl describe node {{ $labels.node }} shows which.
    |||,
  ),

  // Custom networking selects an ENIConfig that does not exist (the exporter's finding): ipamd
  // cannot attach pod ENIs, and under custom networking the primary ENI gives pods no IP.
  alert(
    config,
    'EksIpamEniConfigMissing',
    'critical',
    'max without (severity) (eks_ipam_finding{code="EniConfigMissing"}) == 1',
    'Node {{ $labels.node }} selects an ENIConfig that does not exist',
    |||
      VPC CNI custom networking on node {{ $labels.node }} selects an ENIConfig that is not in the cluster,
      so ipamd cannot attach ENIs for pods there and new pods on it get no IP.
      eks-ipam-exporter diagnose --node {{ $labels.node }} names the ENIConfig it looks for.
    |||,
  ),
]
