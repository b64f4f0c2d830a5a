// EKS IPAM / Node: one node's pod-IP pool, ENIs, assumed against real capacity, EC2 calls.
local g = import '../lib/grafana.libsonnet';
local u = import '../lib/utils.libsonnet';

function(config)
  local c = (import 'common.libsonnet')(config);
  local target = g.target,
        steps = g.steps,
        stat = g.stat,
        timeseries = g.timeseries,
        bargauge = g.bargauge,
        table = g.table,
        byName = g.byName,
        prop = g.prop;
  local silence = config.allocationSilenceThresholdSeconds;
  // metric{<cluster and job matchers>, node="$node"[, extra]}
  local n(metric, extra='') = c.m(metric, 'node="$node"' + (if extra == '' then '' else ', ' + extra));
  local panels = [
    stat('Node',
         'Instance type, zone and Karpenter nodepool of the node (eks_ipam_node_info; nodepool empty for '
         + 'non-Karpenter nodes).',
         [target(n('eks_ipam_node_info'), '{{instance_type}} | {{zone}} | nodepool {{nodepool}}', instant=true)],
         unit='none',
         textMode='name'),
    stat('Pods waiting for an IP',
         'Pods on this node stuck in ContainerCreating because ipamd had no IP for them '
         + '(eks_ipam_node_pods_waiting_for_ip).',
         [target(n('eks_ipam_node_pods_waiting_for_ip'), 'waiting', instant=true)],
         thresholds=steps([['green', null], ['red', 1]])),
    stat('Free pod IPs',
         'IPs ipamd can hand out right now, excluding IPs in their 30 s cooldown (eks_ipam_node_ips{state=available}).',
         [target(n('eks_ipam_node_ips', 'state="available"'), 'available', instant=true)],
         thresholds=steps([['red', null], ['green', 1]])),
    stat('Pod-IP overcommit',
         'max-pods minus host-network pods minus pod-IP capacity (eks_ipam_node_pod_ip_overcommit). Above 0, pods '
         + 'scheduled here can never get an IP.',
         [target(n('eks_ipam_node_pod_ip_overcommit'), 'overcommit', instant=true)],
         thresholds=steps([['green', null], ['orange', 1]])),
    stat('ipamd growth blocked',
         'BLOCKED when ipamd would not add IPs even at zero free IPs although the node is below its maximum '
         + '(eks_ipam_node_ip_growth_blocked): the next pod beyond the pool waits forever.',
         [target(n('eks_ipam_node_ip_growth_blocked'), 'growth', instant=true)],
         unit='none',
         mappings=c.yesNoBad,
         thresholds=steps([['green', null], ['red', 1]])),
    stat('Allocation API silence',
         'Allocation silence: time since CloudTrail last showed AssignPrivateIpAddresses or CreateNetworkInterface '
         + "for this node's ENIs (eks_ipam:node_allocation_call_silence_seconds:min). Normal when idle; with pods waiting and no free IP, "
         + 'more than ' + u.minutes(silence) + ' minutes means ipamd is not trying.',
         [target(n('eks_ipam:node_allocation_call_silence_seconds:min'), 'silence', instant=true)],
         unit='s',
         thresholds=steps([['green', null], ['orange', silence]])),
    timeseries('ipamd IP pool',
               "The node's IP pool by state, stacked (eks_ipam_node_ips: assigned to pods, available, in cooldown), "
               + 'against the pod-IP capacity ipamd can reach under its settings (eks_ipam_node_pod_ip_capacity).',
               [
                 target(n('eks_ipam_node_ips'), '{{state}}'),
                 target(n('eks_ipam_node_pod_ip_capacity'), 'pod-IP capacity'),
               ],
               'short',
               stack=true,
               min=0,
               overrides=[byName('pod-IP capacity', [
                 prop('custom.stacking', { mode: 'none', group: 'B' }),
                 prop('custom.fillOpacity', 0),
                 prop('custom.lineStyle', { fill: 'dash', dash: [10, 10] }),
                 prop('color', { mode: 'fixed', fixedColor: 'red' }),
               ])]),
    timeseries('ENIs vs maximum',
               'ENIs attached to the node (eks_ipam_node_enis) against the ENIs ipamd may use for pods '
               + "(eks_ipam_node_enis_max: the default card's limit, minus the primary ENI under custom networking and the "
               + 'trunk ENI under security groups for pods).',
               [target(n('eks_ipam_node_enis'), 'attached ENIs'), target(n('eks_ipam_node_enis_max'), 'usable ENI maximum')],
               'short',
               min=0),
    timeseries('Assumed vs real pod capacity',
               "max-pods the kubelet, scheduler and Karpenter assume (eks_ipam_node_max_pods), what Karpenter's formula "
               + 'gives with the current RESERVED_ENIS (Karpenter nodes only), what the node can really run (pod IPs plus '
               + 'host-network pods), and the pods on it now.',
               [
                 target(n('eks_ipam_node_max_pods'), 'max-pods (assumed)'),
                 target(n('eks_ipam_node_karpenter_expected_max_pods'), 'Karpenter formula'),
                 target(n('eks_ipam_node_pod_ip_capacity') + ' + ignoring (network) ' + n('eks_ipam_node_pods', 'network="host"'),
                        'real: pod IPs + host-network pods'),
                 target('sum without (network) (%s)' % n('eks_ipam_node_pods'), 'pods on the node'),
               ],
               'short',
               min=0),
    timeseries('Pods and waiting pods',
               'Pods on the node by network (eks_ipam_node_pods: pod network needs an IP from ipamd, host network does '
               + 'not) and pods waiting for an IP (eks_ipam_node_pods_waiting_for_ip).',
               [
                 target(n('eks_ipam_node_pods'), '{{network}} network'),
                 target(n('eks_ipam_node_pods_waiting_for_ip'), 'waiting for an IP'),
               ],
               'short',
               min=0,
               overrides=[byName('waiting for an IP', [prop('color', { mode: 'fixed', fixedColor: 'red' })])]),
    timeseries('Time since last EC2 call, by operation',
               "Seconds since CloudTrail last showed each EC2 operation for this node's ENIs "
               + '(eks_ipam_api_call_silence_seconds; a lower bound when no call was seen since CloudTrail coverage '
               + 'started). Red line: the ' + u.minutes(silence) + '-minute silence of EksIpamIpamdAllocationStalled.',
               [target(n('eks_ipam_api_call_silence_seconds'), '{{operation}}')],
               's',
               thresholdLine=silence,
               min=0),
    table('Last EC2 call per operation',
          "Time of the newest CloudTrail event per EC2 operation for this node's ENIs "
          + '(eks_ipam_api_call_last_timestamp_seconds).',
          [target(n('eks_ipam_api_call_last_timestamp_seconds') + ' * 1000', table=true)],
          'dateTimeAsIso',
          [['operation', 'operation'], ['Value', 'last call']],
          w=12,
          hide=['node']),
    bargauge('aws-node targets',
             'Effective WARM_IP_TARGET, MINIMUM_IP_TARGET, WARM_ENI_TARGET and WARM_PREFIX_TARGET for this node '
             + '(eks_ipam_node_cni_target; 0 = unset). MINIMUM_IP_TARGET without WARM_IP_TARGET stops growth.',
             [target(n('eks_ipam_node_cni_target'), '{{target}}', instant=true)],
             'none',
             steps([['blue', null]]),
             w=8,
             min=0),
    timeseries('IP headroom',
               'Pod IPs the node could still hand out if ipamd grew its pool to capacity: capacity minus assigned '
               + '(eks_ipam:node_ip_headroom).',
               [target(n('eks_ipam:node_ip_headroom'), 'headroom')],
               'short',
               w=8,
               min=0),
    table('Findings on this node',
          'Findings the exporter reports for this node (eks_ipam_finding{node=...}); cluster-wide findings are on '
          + 'the overview dashboard.',
          [target(n('eks_ipam_finding'), table=true)],
          'none',
          [['severity', 'severity'], ['code', 'code']],
          w=8,
          hide=['Value', 'node', 'subnet_id'],
          overrides=[c.severityColors]),
  ];
  local nodeVar = (import '../lib/grafana.libsonnet').queryVariable(
    'node', 'Node', 'label_values(%s, node)' % c.m('eks_ipam_node_info'),
  );
  g.dashboard(
    config,
    c.nodeUid,
    'EKS IPAM / Node',
    "One node's pod-IP pool as ipamd sees it (assigned, available, cooldown), ENIs against the maximum, assumed "
    + 'against real pod capacity, waiting pods and the EC2 calls CloudTrail shows for its ENIs (eks-ipam-exporter).',
    panels,
    [c.variables.datasource, c.variables.cluster, c.variables.job, nodeVar],
    [g.dashboardLink(c.overviewUid, 'Cluster overview', true)],
  )
