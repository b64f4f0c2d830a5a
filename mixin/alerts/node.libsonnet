// Per-node alerts: pods waiting for an IP, ipamd not growing its pool, more pods than pod IPs.
local alert = import '../lib/alert.libsonnet';
local u = import '../lib/utils.libsonnet';

function(config) [
  alert(
    config,
    'EksIpamNodePodsWaitingForIp',
    'critical',
    'eks_ipam_node_pods_waiting_for_ip > 0',
    '{{ $labels.node }}: {{ $value | printf "%.0f" }} pod(s) waiting for a pod IP',
    |||
      {{ $value | printf "%.0f" }} pod(s) on node {{ $labels.node }} have waited for a pod IP address
      for more than <<for>> (kubelet event FailedCreatePodSandBox: failed to assign an IP address to container).
      ipamd pool on the node:
      {{ with printf "eks_ipam_node_ips{job=%q,node=%q,state='available'}" $labels.job $labels.node | query }}{{ . | first | value | printf "%.0f" }}{{ else }}unknown{{ end }} available,
      {{ with printf "eks_ipam_node_ips{job=%q,node=%q,state='assigned'}" $labels.job $labels.node | query }}{{ . | first | value | printf "%.0f" }}{{ else }}unknown{{ end }} assigned;
      ENIs {{ with printf "eks_ipam_node_enis{job=%q,node=%q}" $labels.job $labels.node | query }}{{ . | first | value | printf "%.0f" }}{{ else }}unknown{{ end }}
      of {{ with printf "eks_ipam_node_enis_max{job=%q,node=%q}" $labels.job $labels.node | query }}{{ . | first | value | printf "%.0f" }}{{ else }}unknown{{ end }};
      pod-IP capacity {{ with printf "eks_ipam_node_pod_ip_capacity{job=%q,node=%q}" $labels.job $labels.node | query }}{{ . | first | value | printf "%.0f" }}{{ else }}unknown{{ end }}.
    |||,
  ),

  // Pods wait AND ipamd has no free IP AND the node is below its pod-IP capacity AND CloudTrail
  // shows no IP-allocating call for 20 minutes (> the ~15 minute worst-case CloudTrail delay plus
  // ipamd's 2 minute retry, so a node whose ipamd keeps retrying never looks silent once its calls
  // arrive), held for 20 minutes (> the 15 minute delay, so a call ipamd made when the pods started
  // to wait has surely been delivered). Suppressed while the CloudTrail collector of the same
  // exporter (same cluster and job) fails, because silence is then no evidence.
  alert(
    config,
    'EksIpamIpamdAllocationStalled',
    'critical',
    |||
      (
          eks_ipam_node_pods_waiting_for_ip > 0
        and ignoring (state) eks_ipam_node_ips{state="available"} == 0
        and eks_ipam:node_ips:sum < eks_ipam_node_pod_ip_capacity
        and eks_ipam:node_allocation_call_silence_seconds:min > %(silence)d
      )
      unless %(onJob)s eks_ipam_collector_up{collector="cloudtrail"} == 0
    ||| % { silence: config.allocationSilenceThresholdSeconds, onJob: u.on(config, ['job']) },
    'ipamd on {{ $labels.node }} stopped adding pod IPs while pods wait',
    |||
      {{ $value | printf "%.0f" }} pod(s) on node {{ $labels.node }} wait for an IP and ipamd has no free IP
      ({{ with printf "eks_ipam:node_ips:sum{job=%q,node=%q}" $labels.job $labels.node | query }}{{ . | first | value | printf "%.0f" }}{{ else }}unknown{{ end }} IPs attached,
      pod-IP capacity {{ with printf "eks_ipam_node_pod_ip_capacity{job=%q,node=%q}" $labels.job $labels.node | query }}{{ . | first | value | printf "%.0f" }}{{ else }}unknown{{ end }},
      ENIs {{ with printf "eks_ipam_node_enis{job=%q,node=%q}" $labels.job $labels.node | query }}{{ . | first | value | printf "%.0f" }}{{ else }}unknown{{ end }}
      of {{ with printf "eks_ipam_node_enis_max{job=%q,node=%q}" $labels.job $labels.node | query }}{{ . | first | value | printf "%.0f" }}{{ else }}unknown{{ end }}),
      yet CloudTrail shows no AssignPrivateIpAddresses or CreateNetworkInterface call for its ENIs for
      {{ with printf "eks_ipam:node_allocation_call_silence_seconds:min{job=%q,node=%q}" $labels.job $labels.node | query }}{{ . | first | value | humanizeDuration }}{{ else }}unknown{{ end }}:
      ipamd is not trying to grow the pool. Effective aws-node targets on the node:
      WARM_IP_TARGET={{ with printf "eks_ipam_node_cni_target{job=%q,node=%q,target='warm_ip'}" $labels.job $labels.node | query }}{{ . | first | value | printf "%.0f" }}{{ else }}unknown{{ end }},
      MINIMUM_IP_TARGET={{ with printf "eks_ipam_node_cni_target{job=%q,node=%q,target='minimum_ip'}" $labels.job $labels.node | query }}{{ . | first | value | printf "%.0f" }}{{ else }}unknown{{ end }}
      (0 = unset; MINIMUM_IP_TARGET without WARM_IP_TARGET stops growth at MINIMUM_IP_TARGET IPs).
    |||,
  ),

  alert(
    config,
    'EksIpamPodCapacityOvercommitted',
    'warning',
    'eks_ipam_node_pod_ip_overcommit > 0',
    '{{ $labels.node }} allows {{ $value | printf "%.0f" }} more pod(s) than it has pod IPs',
    |||
      Node {{ $labels.node }}{{ with printf "eks_ipam_node_info{job=%q,node=%q}" $labels.job $labels.node | query }}
      ({{ . | first | label "instance_type" }}, nodepool "{{ . | first | label "nodepool" }}"){{ end }}
      has max-pods {{ with printf "eks_ipam_node_max_pods{job=%q,node=%q}" $labels.job $labels.node | query }}{{ . | first | value | printf "%.0f" }}{{ else }}unknown{{ end }},
      but ipamd can give pods only {{ with printf "eks_ipam_node_pod_ip_capacity{job=%q,node=%q}" $labels.job $labels.node | query }}{{ . | first | value | printf "%.0f" }}{{ else }}unknown{{ end }} IPs
      and {{ with printf "eks_ipam_node_pods{job=%q,node=%q,network='host'}" $labels.job $labels.node | query }}{{ . | first | value | printf "%.0f" }}{{ else }}unknown{{ end }} pod(s) use the host network:
      the scheduler can place {{ $value | printf "%.0f" }} pod(s) there that never get an IP (ContainerCreating),
      and Karpenter launches no node for them because it believes the node has room.{{ with printf "eks_ipam_node_karpenter_expected_max_pods{job=%q,node=%q}" $labels.job $labels.node | query }}
      Karpenter's formula with the current RESERVED_ENIS gives {{ . | first | value | printf "%.0f" }}.{{ end }}
    |||,
  ),
]
