// aws-node and Karpenter settings that make nodes run out of pod IPs (the exporter's findings).
local alert = import '../lib/alert.libsonnet';

function(config) [
  // Driven by the exporter's finding; its own severity label (warning, or critical once it has
  // blocked a node) is dropped so the alert keeps one identity.
  alert(
    config,
    'EksIpamMinimumIpTargetWithoutWarmIpTarget',
    'warning',
    'max without (severity) (eks_ipam_finding{code="MinimumIpTargetWithoutWarmIpTarget"}) == 1',
    'aws-node sets MINIMUM_IP_TARGET without WARM_IP_TARGET',
    |||
      aws-node runs with MINIMUM_IP_TARGET={{ with printf "max(eks_ipam_node_cni_target{job=%q,target='minimum_ip'})" $labels.job | query }}{{ . | first | value | printf "%.0f" }}{{ else }}unknown{{ end }}
      and WARM_IP_TARGET unset or 0. ipamd then stops adding IPs once a node holds MINIMUM_IP_TARGET IPs, even with
      no free IP left, so the next pod on that node never starts.
      {{ with printf "count(eks_ipam_node_ip_growth_blocked{job=%q} == 1)" $labels.job | query }}{{ . | first | value | printf "%.0f" }}{{ else }}0{{ end }} node(s) are growth-blocked now.
      Set WARM_IP_TARGET on the aws-node DaemonSet.
    |||,
  ),

  alert(
    config,
    'EksIpamKarpenterReservedEnisMissing',
    'warning',
    'max without (severity) (eks_ipam_finding{code="KarpenterReservedEnisMissing"}) == 1',
    'Karpenter RESERVED_ENIS is 0 while the VPC CNI keeps an ENI from pods',
    |||
      Karpenter's RESERVED_ENIS is {{ with printf "eks_ipam_karpenter_reserved_enis{job=%q}" $labels.job | query }}{{ . | first | value | printf "%.0f" }}{{ else }}unknown{{ end }}
      while VPC CNI custom networking is {{ with printf "eks_ipam_cni_custom_networking_enabled{job=%q}" $labels.job | query }}{{ if eq (. | first | value) 1.0 }}on{{ else }}off (pod ENI trunking){{ end }}{{ else }}unknown{{ end }}:
      Karpenter writes a max-pods that counts IPs of an ENI pods cannot use, so its nodes accept pods that never get an IP.
      {{ with printf "count(eks_ipam_node_pod_ip_overcommit{job=%q} > 0)" $labels.job | query }}{{ . | first | value | printf "%.0f" }}{{ else }}0{{ end }} node(s) are overcommitted now.
      Set Helm settings.reservedENIs "1", then drain and replace the existing Karpenter nodes.
    |||,
  ),
]
