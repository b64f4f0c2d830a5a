// EC2 calls that fail (from CloudTrail).
local alert = import '../lib/alert.libsonnet';

function(config) [
  alert(
    config,
    'EksIpamIpAssignmentErrors',
    'warning',
    'eks_ipam:api_call_errors:increase30m{operation=~"Assign.*|CreateNetworkInterface|AttachNetworkInterface"} >= %d'
    % config.ipAssignmentErrorThreshold,
    'EC2 {{ $labels.operation }} calls fail with {{ $labels.error_code }}',
    |||
      CloudTrail recorded {{ $value | printf "%.0f" }} failed {{ $labels.operation }} call(s) with error
      {{ $labels.error_code }} in the last 30 minutes. While this lasts, nodes cannot add pod IPs and new pods wait.
    |||,
  ),
]
