// Subnets and zones running out of IPs or /28 prefixes.
local alert = import '../lib/alert.libsonnet';
local u = import '../lib/utils.libsonnet';

function(config)
  local vars = {
    ratio: u.ratio(config.subnetLowFreeRatio),
    minIps: config.subnetLowMinFreeIps,
    onSubnet: u.on(config, ['job', 'instance', 'subnet_id']),
    onZone: u.on(config, ['job', 'instance', 'availability_zone']),
    onJob: u.on(config, ['job']),
  };
  [
    // Below subnetLowFreeRatio free or below subnetLowMinFreeIps free IPs, whichever is larger
    // (10% / 32 by default); 0 free is EksIpamSubnetIpsExhausted. A subnet with sibling candidates
    // in its zone (enhanced subnet discovery) is covered by EksIpamZonePodIpsLow: ipamd puts the
    // next ENI in whichever has the most free IPs.
    alert(
      config,
      'EksIpamSubnetIpsLow',
      'warning',
      |||
        eks_ipam_subnet_available_ips > 0
        and eks_ipam_subnet_available_ips < clamp_min(%(ratio)s * eks_ipam_subnet_size_ips, %(minIps)d)
        unless %(onSubnet)s eks_ipam_subnet_zone_candidates > 1
      ||| % vars,
      'Subnet {{ $labels.subnet_id }} ({{ $labels.availability_zone }}) is running out of IPs',
      |||
        The {{ $labels.role }} subnet {{ $labels.subnet_id }} in {{ $labels.availability_zone }} has
        {{ $value | printf "%.0f" }} free IPs left of
        {{ with printf "eks_ipam_subnet_size_ips{job=%q,subnet_id=%q,role=%q}" $labels.job $labels.subnet_id $labels.role | query }}{{ . | first | value | printf "%.0f" }}{{ else }}unknown{{ end }}
        ({{ with printf "eks_ipam:subnet_available_ips:ratio{job=%q,subnet_id=%q,role=%q}" $labels.job $labels.subnet_id $labels.role | query }}{{ . | first | value | humanizePercentage }}{{ else }}unknown{{ end }}).
        New ENIs, secondary IPs and nodes there will soon fail with InsufficientFreeAddressesInSubnet.
      |||,
    ),

    // Siblings in the zone: EksIpamZonePodIpsExhausted instead.
    alert(
      config,
      'EksIpamSubnetIpsExhausted',
      'critical',
      |||
        eks_ipam_subnet_available_ips == 0
        unless %(onSubnet)s eks_ipam_subnet_zone_candidates > 1
      ||| % vars,
      'Subnet {{ $labels.subnet_id }} ({{ $labels.availability_zone }}) has no free IP',
      |||
        The {{ $labels.role }} subnet {{ $labels.subnet_id }} in {{ $labels.availability_zone }} has 0 free IPs of
        {{ with printf "eks_ipam_subnet_size_ips{job=%q,subnet_id=%q,role=%q}" $labels.job $labels.subnet_id $labels.role | query }}{{ . | first | value | printf "%.0f" }}{{ else }}unknown{{ end }}.
        ipamd cannot attach ENIs or IPs from it (InsufficientFreeAddressesInSubnet, retried every 120 s), so pods on
        nodes that draw from it wait for IPs{{ if eq $labels.role "node" }} and new nodes cannot launch in it{{ end }}.
      |||,
    ),

    // Not when a sibling candidate in the zone still has free /28s (it takes the next ENI).
    alert(
      config,
      'EksIpamSubnetNoFreePrefix',
      'warning',
      |||
        eks_ipam_subnet_free_prefixes == 0
        and eks_ipam_subnet_available_ips > 0
        and %(onJob)s eks_ipam_cni_prefix_delegation_enabled == 1
        unless %(onSubnet)s (
          eks_ipam_subnet_zone_candidates > 1
          and %(onZone)s eks_ipam_zone_free_prefixes > 0
        )
      ||| % vars,
      'Subnet {{ $labels.subnet_id }} ({{ $labels.availability_zone }}) has no free /28 prefix',
      |||
        Prefix delegation is on and the {{ $labels.role }} subnet {{ $labels.subnet_id }} in {{ $labels.availability_zone }}
        still has {{ with printf "eks_ipam_subnet_available_ips{job=%q,subnet_id=%q,role=%q}" $labels.job $labels.subnet_id $labels.role | query }}{{ . | first | value | printf "%.0f" }}{{ else }}unknown{{ end }}
        free IPs but no free aligned /28 block, so ipamd cannot add prefixes there (InsufficientCidrBlocks)
        and nodes that draw from it cannot grow their pod-IP pool.
      |||,
    ),

    // The EksIpamSubnetIpsLow thresholds on the total of a zone's candidate subnets (two or more:
    // with one, the subnet alerts say it); 0 free is EksIpamZonePodIpsExhausted.
    alert(
      config,
      'EksIpamZonePodIpsLow',
      'warning',
      |||
        eks_ipam_zone_pod_ips_available > 0
        and eks_ipam_zone_pod_ips_available < clamp_min(%(ratio)s * eks_ipam_zone_pod_ips_size, %(minIps)d)
        and eks_ipam_zone_pod_ip_subnets > 1
      ||| % vars,
      'Zone {{ $labels.availability_zone }} is running out of pod IPs',
      |||
        The {{ with printf "eks_ipam_zone_pod_ip_subnets{job=%q,instance=%q,availability_zone=%q}" $labels.job $labels.instance $labels.availability_zone | query }}{{ . | first | value | printf "%.0f" }}{{ else }}candidate{{ end }}
        subnets ipamd can create new ENIs in for nodes in {{ $labels.availability_zone }} have {{ $value | printf "%.0f" }} free IPs left of
        {{ with printf "eks_ipam_zone_pod_ips_size{job=%q,instance=%q,availability_zone=%q}" $labels.job $labels.instance $labels.availability_zone | query }}{{ . | first | value | printf "%.0f" }}{{ else }}unknown{{ end }}.
        New ENIs and secondary IPs there will soon fail with InsufficientFreeAddressesInSubnet.
      |||,
    ),

    alert(
      config,
      'EksIpamZonePodIpsExhausted',
      'critical',
      |||
        eks_ipam_zone_pod_ips_available == 0
        and eks_ipam_zone_pod_ip_subnets > 1
      |||,
      'Zone {{ $labels.availability_zone }} has no free pod IP',
      |||
        None of the {{ with printf "eks_ipam_zone_pod_ip_subnets{job=%q,instance=%q,availability_zone=%q}" $labels.job $labels.instance $labels.availability_zone | query }}{{ . | first | value | printf "%.0f" }}{{ else }}candidate{{ end }}
        subnets ipamd can create new ENIs in for nodes in {{ $labels.availability_zone }} has a free IP: nodes there cannot add
        pod IPs (InsufficientFreeAddressesInSubnet, retried every 120 s), and pods wait.
      |||,
    ),
  ]
