// Recording rules. The alerts and the dashboards read them; tests/rules/records.test.yaml
// evaluates every one of them.
//
// Every aggregation here is `without (...)`, so the cluster label (and job, instance) stays on the
// recorded series and clusters never mix.
{
  eksIpamRecordingRules(config):: [
    // Pool size per node: assigned + available + cooldown.
    {
      record: 'eks_ipam:node_ips:sum',
      expr: 'sum without (state) (eks_ipam_node_ips)',
    },
    // Pod IPs the node could still hand out if ipamd grew its pool to the node's capacity.
    {
      record: 'eks_ipam:node_ip_headroom',
      expr: 'eks_ipam_node_pod_ip_capacity - ignoring (state) eks_ipam_node_ips{state="assigned"}',
    },
    // Allocation silence: seconds since the last IP-allocating EC2 call for the node's ENIs in
    // CloudTrail, the smallest silence over AssignPrivateIpAddresses and CreateNetworkInterface
    // (the calls ipamd makes to grow its pool; Unassign* free IPs and do not count). The finding
    // IpamdAllocationStalled, the status page and `diagnose` use the same definition.
    {
      record: 'eks_ipam:node_allocation_call_silence_seconds:min',
      expr: 'min without (operation) (eks_ipam_api_call_silence_seconds{operation=~"AssignPrivateIpAddresses|CreateNetworkInterface"})',
    },
    // 1 for every node that needs attention: pods waiting for an IP, no free IP, growth blocked by
    // ipamd's settings, or more pods allowed than pod IPs.
    {
      record: 'eks_ipam:node_at_risk',
      expr: |||
        group without (state) (
            eks_ipam_node_pods_waiting_for_ip > 0
          or eks_ipam_node_ip_growth_blocked == 1
          or eks_ipam_node_pod_ip_overcommit > 0
          or eks_ipam_node_ips{state="available"} == 0
        )
      |||,
    },
    // Free fraction of each subnet (0..1).
    {
      record: 'eks_ipam:subnet_available_ips:ratio',
      expr: 'eks_ipam_subnet_available_ips / (eks_ipam_subnet_size_ips > 0)',
    },
    // Free IPs per availability zone and subnet role.
    {
      record: 'eks_ipam:zone_available_ips:sum',
      expr: 'sum without (subnet_id) (eks_ipam_subnet_available_ips)',
    },
    // Failed EC2 calls seen in CloudTrail over 30 minutes, per operation and error code (summed
    // over exporter restarts: `instance` and `pod` change when the pod is replaced).
    {
      record: 'eks_ipam:api_call_errors:increase30m',
      expr: 'sum without (instance, pod) (increase(eks_ipam_api_calls_total{error_code!="none"}[30m]))',
    },
  ],

  prometheusRules+:: {
    groups+: [
      {
        name: $._config.ruleGroupName + '.rules',
        rules: $.eksIpamRecordingRules($._config),
      },
    ],
  },
}
