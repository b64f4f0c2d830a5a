// EKS IPAM / Overview: subnets, zones, nodes at risk, findings, CloudTrail, exporter health.
local g = import '../lib/grafana.libsonnet';
local u = import '../lib/utils.libsonnet';

function(config)
  local c = (import 'common.libsonnet')(config);
  local m = c.m;
  local target = g.target,
        steps = g.steps,
        stat = g.stat,
        timeseries = g.timeseries,
        bargauge = g.bargauge,
        table = g.table,
        byName = g.byName,
        byRef = g.byRef,
        prop = g.prop;
  local silence = config.allocationSilenceThresholdSeconds;
  local lowRatio = config.subnetLowFreeRatio;
  local atRisk = 'and %s %s' % [c.on(['job', 'node']), m('eks_ipam:node_at_risk')];
  local panels = [
    // --- headline numbers
    stat('Nodes with pods waiting for an IP',
         'Nodes where at least one pod is stuck in ContainerCreating because ipamd had no IP for it '
         + '(eks_ipam_node_pods_waiting_for_ip > 0). Alert: EksIpamNodePodsWaitingForIp after '
         + u.humanDuration(config.alertFor.EksIpamNodePodsWaitingForIp) + '.',
         [target('count(%s > 0) or vector(0)' % m('eks_ipam_node_pods_waiting_for_ip'), 'nodes', instant=true)],
         thresholds=steps([['green', null], ['red', 1]])),
    stat('Overcommitted nodes',
         'Nodes whose max-pods (what the scheduler and Karpenter assume) exceeds host-network pods plus the pod IPs '
         + 'ipamd can give (eks_ipam_node_pod_ip_overcommit > 0): pods placed there beyond the IPs hang.',
         [target('count(%s > 0) or vector(0)' % m('eks_ipam_node_pod_ip_overcommit'), 'nodes', instant=true)],
         thresholds=steps([['green', null], ['orange', 1]])),
    stat('Growth-blocked nodes',
         'Nodes where ipamd would not add IPs even with zero free IPs although the node is below its maximum '
         + '(eks_ipam_node_ip_growth_blocked), e.g. MINIMUM_IP_TARGET without WARM_IP_TARGET.',
         [target('count(%s == 1) or vector(0)' % m('eks_ipam_node_ip_growth_blocked'), 'nodes', instant=true)],
         thresholds=steps([['green', null], ['orange', 1]])),
    stat('Critical findings',
         'Active findings of severity critical computed by the exporter (eks_ipam_finding). See the findings table below.',
         [target('count(%s) or vector(0)' % m('eks_ipam_finding', 'severity="critical"'), 'critical', instant=true)],
         thresholds=steps([['green', null], ['red', 1]])),
    stat('Warning findings',
         'Active findings of severity warning computed by the exporter (eks_ipam_finding).',
         [target('count(%s) or vector(0)' % m('eks_ipam_finding', 'severity="warning"'), 'warning', instant=true)],
         thresholds=steps([['green', null], ['orange', 1]])),
    stat('Lowest subnet headroom',
         'Free fraction of the fullest node or pod subnet (eks_ipam:subnet_available_ips:ratio). '
         + 'EksIpamSubnetIpsLow fires below ' + u.percent(lowRatio) + ' (or below ' + config.subnetLowMinFreeIps
         + ' free IPs), EksIpamSubnetIpsExhausted at 0.',
         [target('min(%s)' % m('eks_ipam:subnet_available_ips:ratio'), 'lowest', instant=true)],
         unit='percentunit',
         thresholds=steps([['red', null], ['orange', lowRatio], ['green', 0.2]]),
         decimals=1),
    // --- subnets and zones
    timeseries('Free IPs by subnet',
               "AvailableIpAddressCount of every subnet the cluster's nodes and pods draw from (DescribeSubnets; "
               + 'EC2 updates it with some lag). role=node: node subnet; role=pod: ENIConfig subnet under custom networking.',
               [target(m('eks_ipam_subnet_available_ips'), '{{subnet_id}} {{availability_zone}} ({{role}})')],
               'short',
               min=0),
    timeseries('Free IPs by availability zone',
               'Free IPs summed per availability zone and subnet role (eks_ipam:zone_available_ips:sum). A zone '
               + 'running dry blocks pods on every node in it even when other zones have room.',
               [target(m('eks_ipam:zone_available_ips:sum'), '{{availability_zone}} ({{role}})')],
               'short',
               min=0),
    timeseries('Pod-IP headroom by zone (candidate subnets)',
               "Free IPs over the subnets ipamd can create the zone's nodes' next ENIs in "
               + '(eks_ipam_zone_pod_ips_available): with enhanced subnet discovery the node subnets plus subnets '
               + 'tagged kubernetes.io/role/cni, under custom networking the ENIConfig subnets. This, not one full '
               + 'subnet, is what pods depend on when a zone has several candidates (EksIpamZonePodIpsLow/Exhausted).',
               [target(m('eks_ipam_zone_pod_ips_available'), '{{availability_zone}}')],
               'short',
               min=0),
    timeseries('Pods refused for VPC resources',
               'Pending pods the scheduler refused with Insufficient vpc.amazonaws.com/pod-eni (security groups for '
               + 'pods: branch ENIs) or vpc.amazonaws.com/PrivateIPv4Address (Windows pod IPs), from their PodScheduled '
               + 'condition (eks_ipam_pods_unschedulable). These pods never reach a node, so the pod-IP panels above do '
               + 'not show them (EksIpamPodsUnschedulableForVpcResource).',
               [target(m('eks_ipam_pods_unschedulable'), '{{resource}}')],
               'short',
               min=0),
    bargauge('Subnet headroom',
             'Free fraction of each subnet, fullest first (eks_ipam:subnet_available_ips:ratio).',
             [target('sort(%s)' % m('eks_ipam:subnet_available_ips:ratio'),
                     '{{subnet_id}} {{availability_zone}} ({{role}})',
                     instant=true)],
             'percentunit',
             steps([['red', null], ['orange', lowRatio], ['green', 0.2]]),
             min=0,
             max=1),
    timeseries('Subnet addresses by holder',
               'Who holds the addresses of the subnets the cluster uses, summed over them (eks_ipam_subnet_ips): '
               + "pod = assigned to this cluster's pods, warm = on its node ENIs but unassigned (ipamd's warm pools: "
               + "what lower WARM_* targets would give back), eni_primary = its node ENIs' primary IPs, other = "
               + 'everyone else (load balancers, endpoints, other clusters, ENIs this account cannot see), reserved = '
               + "AWS's 5 per subnet and unused CIDR reservations, free. pod and warm are missing for a subnet while a "
               + 'node ENI in it has no ipamd pool (agent down, Windows, Auto Mode).',
               [target('sum by (holder) (%s)' % m('eks_ipam_subnet_ips'), '{{holder}}')],
               'short',
               stack=true,
               min=0),
    timeseries('Warm IPs held by subnet',
               "Addresses on this cluster's node ENIs that no pod uses, per subnet (eks_ipam_subnet_ips{holder=\"warm\"}): "
               + 'the IPs a full subnet could get back from smaller warm targets.',
               [target(m('eks_ipam_subnet_ips', 'holder="warm"'), '{{subnet_id}}')],
               'short',
               min=0),
    timeseries('Free /28 prefixes by subnet',
               'Free aligned /28 blocks per subnet (eks_ipam_subnet_free_prefixes). Only matters with prefix '
               + 'delegation: a subnet can have free IPs and no free /28 (InsufficientCidrBlocks).',
               [target(m('eks_ipam_subnet_free_prefixes'), '{{subnet_id}} {{availability_zone}} ({{role}})')],
               'short',
               min=0),
    // --- nodes
    table('Nodes at risk',
          "Nodes with pods waiting for an IP, no free IP, growth blocked by ipamd's settings, or more max-pods than "
          + 'pod IPs (eks_ipam:node_at_risk). Click a node to open the node drill-down.',
          [
            target(m('eks_ipam_node_info') + ' ' + atRisk, table=true),
            target(m('eks_ipam_node_pods_waiting_for_ip') + ' ' + atRisk, table=true),
            target('sum without (state) (%s) ' % m('eks_ipam_node_ips', 'state="available"') + atRisk, table=true),
            target(m('eks_ipam:node_ip_headroom') + ' ' + atRisk, table=true),
            target(m('eks_ipam_node_pod_ip_capacity') + ' ' + atRisk, table=true),
            target(m('eks_ipam_node_max_pods') + ' ' + atRisk, table=true),
            target(m('eks_ipam_node_pod_ip_overcommit') + ' ' + atRisk, table=true),
            target(m('eks_ipam_node_ip_growth_blocked') + ' ' + atRisk, table=true),
            target(m('eks_ipam:node_allocation_call_silence_seconds:min') + ' ' + atRisk, table=true),
          ],
          'short',
          [
            ['node', 'node'],
            ['instance_type', 'instance type'],
            ['zone', 'zone'],
            ['nodepool', 'nodepool'],
            ['Value #B', 'pods waiting for IP'],
            ['Value #C', 'free IPs'],
            ['Value #D', 'IP headroom'],
            ['Value #E', 'pod-IP capacity'],
            ['Value #F', 'max-pods'],
            ['Value #G', 'overcommit'],
            ['Value #H', 'growth blocked'],
            ['Value #I', 'allocation API silence'],
          ],
          hide=['Value #A'],
          h=9,
          sortBy=[{ displayName: 'pods waiting for IP', desc: true }],
          overrides=[
            c.nodeColumnLink,
            byName('allocation API silence', [prop('unit', 's')]),
            byName('growth blocked', [
              prop('mappings', c.yesNoBad),
              prop('custom.cellOptions', { type: 'color-text' }),
            ]),
            byName('pods waiting for IP', [
              prop('thresholds', steps([['green', null], ['red', 1]])),
              prop('custom.cellOptions', { type: 'color-text' }),
            ]),
            byName('overcommit', [
              prop('thresholds', steps([['green', null], ['orange', 1]])),
              prop('custom.cellOptions', { type: 'color-text' }),
            ]),
          ]),
    bargauge('Pod-IP overcommit by node',
             'Pods the scheduler may place on a node beyond its host-network pods and pod IPs '
             + '(eks_ipam_node_pod_ip_overcommit > 0). Under custom networking with Karpenter RESERVED_ENIS=0 this is one '
             + "ENI's worth of IPs per node (t4g.medium: 5).",
             [target('sort_desc((%s > 0) * %s group_left (instance_type, nodepool) %s)'
                     % [m('eks_ipam_node_pod_ip_overcommit'), c.on(['job', 'node']), m('eks_ipam_node_info')],
                     '{{node}} ({{instance_type}}, {{nodepool}})',
                     instant=true)],
             'short',
             steps([['orange', null], ['red', 5]]),
             min=0),
    table('Active findings',
          'Every finding the exporter currently reports (eks_ipam_finding), with its severity and the node or subnet '
          + "it applies to. The exporter's /api/v1/diagnosis and / page carry the evidence and the remediation.",
          [target(m('eks_ipam_finding'), table=true)],
          'none',
          [['severity', 'severity'], ['code', 'code'], ['node', 'node'], ['subnet_id', 'subnet']],
          hide=['Value'],
          w=12,
          sortBy=[{ displayName: 'severity', desc: false }],
          overrides=[c.severityColors, c.nodeColumnLink]),
    // --- CloudTrail
    timeseries('Allocation silence where pods need IPs',
               'Allocation silence (seconds since CloudTrail last showed AssignPrivateIpAddresses or '
               + "CreateNetworkInterface for a node's ENIs: eks_ipam:node_allocation_call_silence_seconds:min), only "
               + 'for nodes with pods waiting for an IP or no free IP left, 20 longest. Silence alone is not risk: an '
               + 'idle healthy node needs no call and is left out. Red line: the EksIpamIpamdAllocationStalled '
               + 'threshold. CloudTrail delivers events ~5 (up to 15) minutes late.',
               [target('topk(20, %s and %s (%s > 0 or sum without (state) (%s) == 0))'
                       % [
                         m('eks_ipam:node_allocation_call_silence_seconds:min'),
                         c.on(['job', 'node']),
                         m('eks_ipam_node_pods_waiting_for_ip'),
                         m('eks_ipam_node_ips', 'state="available"'),
                       ],
                       '{{node}}')],
               's',
               thresholdLine=silence,
               min=0),
    timeseries('EC2 API calls seen in CloudTrail',
               'IP-related EC2 calls per second by operation and result (eks_ipam_api_calls_total); error_code none '
               + 'is success. Insufficient* errors mean a full or fragmented subnet.',
               [target('sum by (operation, error_code) (rate(%s[$__rate_interval]))' % m('eks_ipam_api_calls_total'),
                       '{{operation}} {{error_code}}')],
               'ops',
               min=0),
    // --- configuration and health
    stat('CNI and Karpenter settings',
         'Cluster-wide settings the capacity math depends on: VPC CNI custom networking and prefix delegation '
         + "(aws-node env) and Karpenter's RESERVED_ENIS (controller env). Custom networking with RESERVED_ENIS 0 "
         + 'overcommits Karpenter nodes.',
         [
           target('max(%s)' % m('eks_ipam_cni_custom_networking_enabled'), 'custom networking', instant=true),
           target('max(%s)' % m('eks_ipam_cni_prefix_delegation_enabled'), 'prefix delegation', instant=true),
           target('max(%s)' % m('eks_ipam_karpenter_reserved_enis'), 'Karpenter RESERVED_ENIS', instant=true),
         ],
         unit='none',
         w=8,
         overrides=[byRef('A', [prop('mappings', c.onOff)]), byRef('B', [prop('mappings', c.onOff)])]),
    stat('Collectors',
         'Whether each data source of the exporter works (eks_ipam_collector_up, worst over all exporter '
         + 'instances). A failing collector makes its metrics absent, so alerts built on them cannot fire.',
         [target('min by (collector) (%s)' % m('eks_ipam_collector_up'), '{{collector}}', instant=true)],
         unit='none',
         mappings=c.upDown,
         thresholds=steps([['red', null], ['green', 1]]),
         w=8),
    stat('Exporter scrape targets up',
         'Scrape targets up per job (up of the jobs the job variable lists: the scrape jobs of the exporter, '
         + 'selected as EksIpamExporterDown selects them): the cluster exporter and one node agent per node.',
         [target('sum by (job) (%s)' % m('up'), '{{job}}', instant=true)],
         unit='short',
         w=4),
    stat('Exporter version',
         'Version of the running exporter(s) (eks_ipam_build_info).',
         [target('count by (version) (%s)' % m('eks_ipam_build_info'), '{{version}}', instant=true)],
         unit='none',
         w=4,
         textMode='name'),
    timeseries('Time since last successful collection',
               'Seconds since each collector last succeeded (time() - eks_ipam_collector_last_success_timestamp_seconds, '
               + 'worst instance).',
               [target('max by (collector) (time() - %s)' % m('eks_ipam_collector_last_success_timestamp_seconds'), '{{collector}}')],
               's',
               w=8,
               min=0),
    timeseries('Collection duration',
               'How long the last run of each collector took (eks_ipam_collector_duration_seconds, worst instance).',
               [target('max by (collector) (%s)' % m('eks_ipam_collector_duration_seconds'), '{{collector}}')],
               's',
               w=8,
               min=0),
    timeseries('CloudTrail poller lag',
               'How far the CloudTrail poller is behind (eks_ipam_cloudtrail_lag_seconds). API-call silence is only '
               + 'evidence when the poller keeps up; CloudTrail itself adds ~5 (up to 15) minutes.',
               [target('max(%s)' % m('eks_ipam_cloudtrail_lag_seconds'), 'lag')],
               's',
               w=8,
               min=0),
  ];
  g.dashboard(
    config,
    c.overviewUid,
    'EKS IPAM / Overview',
    'Pod-IP headroom of an EKS cluster with the VPC CNI: subnets, nodes at risk, overcommitted nodes, findings, '
    + "CloudTrail API-call silence and the exporter's own health (eks-ipam-exporter).",
    panels,
    [c.variables.datasource, c.variables.cluster, c.variables.job],
    [g.dashboardLink(c.nodeUid, 'Node drill-down', true)],
  )
