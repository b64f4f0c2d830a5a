#!/usr/bin/env python3
"""Generate src/model/instance_limits.csv from the limits table the AWS VPC CNI itself ships.

Source: tools/data/vpc-cni-v1.23.1-instance-limits.json, the per-type network limits of
aws/amazon-vpc-cni-k8s v1.23.1 (commit b52188387f2e2f10bf289ace929d6a63b176a4fa,
pkg/vpc/vpc_ip_resource_limit.go), with trunking compatibility from
aws/karpenter-provider-aws@1d927085dd81a9df9301e613f371dac5b4d16bfe
(pkg/providers/instancetype/zz_generated.vpclimits.go). Its "about" field states the provenance;
this script refuses a data file whose "about" does not name those commits.

One CSV row per instance type, sorted by name, after a `#` comment line naming the sources:

    instance_type,default_vcpus,hypervisor,bare_metal,max_network_cards,default_network_card_index,
    default_card_max_enis,maximum_network_interfaces,ipv4_per_interface,trunking_compatible,
    manual_upstream_entry

* default_card_max_enis = the JSON's `enis` (ipamd's ENILimit: the default network card's ENIs),
  the ENI count the VPC CNI and Karpenter use.
* maximum_network_interfaces = sum of MaximumNetworkInterfaces over `cards` (`enis` when the type
  lists no cards); max_network_cards = len(cards) (1 when empty);
  default_network_card_index = `default_card`.
* hypervisor = "nitro" / "xen" / "" (bare metal), bare_metal, trunking_compatible and
  manual_upstream_entry (added by hand upstream in scripts/gen_vpc_ip_limits.go, not in the public
  EC2 API) are copied from the JSON as true/false.
* default_vcpus: the upstream table has no vCPU count. It comes from the DescribeInstanceTypes data
  moto ships as a file inside the `moto` package (moto/ec2/resources/instance_types.json[.gz]),
  read directly (no moto server). EMPTY when moto lacks the type: unknown, never a guess. The moto
  version is named in the comment line, so the output is deterministic for a given moto version.

Cross-check: for every type in both moto and the upstream table, the default card's ENIs and IPv4
per ENI are compared (and, informationally, total ENIs, card count, hypervisor and bare metal);
differences are printed to stderr. tests/python/test_instance_limits.py asserts they do not grow.

Usage: tools/gen_instance_limits.py [OUTPUT_PATH]   (default: src/model/instance_limits.csv)
"""
from __future__ import annotations

import gzip
import io
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUTPUT = os.path.join(REPO, "src", "model", "instance_limits.csv")
UPSTREAM_JSON = os.path.join(REPO, "tools", "data", "vpc-cni-v1.23.1-instance-limits.json")

VPC_CNI_VERSION = "v1.23.1"
VPC_CNI_COMMIT = "b52188387f2e2f10bf289ace929d6a63b176a4fa"
KARPENTER_COMMIT = "1d927085dd81a9df9301e613f371dac5b4d16bfe"

HEADER = (
    "instance_type,default_vcpus,hypervisor,bare_metal,max_network_cards,"
    "default_network_card_index,default_card_max_enis,maximum_network_interfaces,ipv4_per_interface,"
    "trunking_compatible,manual_upstream_entry"
)

# Fields whose moto/upstream disagreement matters: what the CNI's capacity math uses.
CROSS_CHECK_FIELDS = ("default_card_max_enis", "ipv4_per_interface")
# Compared too, reported separately (informational).
CROSS_CHECK_INFO_FIELDS = ("maximum_network_interfaces", "max_network_cards", "hypervisor", "bare_metal")


# ---------------------------------------------------------------- upstream (vpc-cni) table


def load_upstream(path: str = UPSTREAM_JSON) -> dict:
    """The upstream JSON ({"about": ..., "types": {name: {...}}}), provenance-checked."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    about = data.get("about", "")
    for needle in (VPC_CNI_VERSION, VPC_CNI_COMMIT, KARPENTER_COMMIT):
        if needle not in about:
            raise ValueError(f"{path}: 'about' does not name {needle}; update the constants here")
    types = data.get("types")
    if not isinstance(types, dict) or not types:
        raise ValueError(f"{path}: no 'types' object")
    return data


def _int(v, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError(f"{what}: expected a non-negative integer, got {v!r}")
    return v


def _bool(v, what: str) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"{what}: expected true/false, got {v!r}")
    return v


def upstream_limits(name: str, u: dict) -> dict:
    """Normalised limits of one upstream entry (the CSV's numbers, as Python values)."""
    enis = _int(u["enis"], f"{name}.enis")
    default_card = _int(u["default_card"], f"{name}.default_card")
    cards = u.get("cards") or []
    for c in cards:
        if not (isinstance(c, list) and len(c) == 2):
            raise ValueError(f"{name}.cards: expected [max_enis, index] pairs, got {c!r}")
        _int(c[0], f"{name}.cards")
        _int(c[1], f"{name}.cards")
    if cards:
        by_index = {c[1]: c[0] for c in cards}
        if len(by_index) != len(cards):
            raise ValueError(f"{name}: duplicate network card index in {cards}")
        if by_index.get(default_card) != enis:
            raise ValueError(f"{name}: enis={enis} but default card {default_card} has {by_index.get(default_card)}")
        total = sum(c[0] for c in cards)
    else:
        total = enis
    hyp = u.get("hypervisor", "")
    if hyp not in ("nitro", "xen", ""):
        raise ValueError(f"{name}: unexpected hypervisor {hyp!r}")
    return {
        "hypervisor": hyp,
        "bare_metal": _bool(u["bare_metal"], f"{name}.bare_metal"),
        "max_network_cards": len(cards) if cards else 1,
        "default_network_card_index": default_card,
        "default_card_max_enis": enis,
        "maximum_network_interfaces": total,
        "ipv4_per_interface": _int(u["ipv4_per_eni"], f"{name}.ipv4_per_eni"),
        "trunking_compatible": _bool(u["trunking_compatible"], f"{name}.trunking_compatible"),
        "manual_upstream_entry": _bool(u["manual_upstream_entry"], f"{name}.manual_upstream_entry"),
    }


# ---------------------------------------------------------------- moto's DescribeInstanceTypes data


def moto_data_path() -> str:
    import moto

    base = os.path.join(os.path.dirname(os.path.abspath(moto.__file__)), "ec2", "resources")
    for name in ("instance_types.json", "instance_types.json.gz"):
        p = os.path.join(base, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"moto {moto.__version__}: no instance_types.json[.gz] under {base}")


def moto_version() -> str:
    import moto

    return moto.__version__


def load_moto() -> dict[str, dict]:
    """moto's DescribeInstanceTypes entries by instance type (read from the package's data file)."""
    path = moto_data_path()
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        data = json.load(f)
    if isinstance(data, list):
        data = {t["InstanceType"]: t for t in data}
    for name, t in data.items():
        if t.get("InstanceType", name) != name:
            raise ValueError(f"moto data: key {name} holds {t.get('InstanceType')}")
    return data


def moto_limits(t: dict) -> dict:
    """The same fields as upstream_limits, from one DescribeInstanceTypes entry."""
    net = t["NetworkInfo"]
    idx = int(net.get("DefaultNetworkCardIndex", 0))
    cards = net.get("NetworkCards") or []
    if cards:
        default = next(
            (int(c["MaximumNetworkInterfaces"]) for c in cards if int(c.get("NetworkCardIndex", 0)) == idx),
            None,
        )
    else:
        default = int(net["MaximumNetworkInterfaces"])
    hyp = t.get("Hypervisor")
    return {
        "default_vcpus": int(t["VCpuInfo"]["DefaultVCpus"]),
        "hypervisor": hyp.lower() if hyp else "",
        "bare_metal": bool(t.get("BareMetal")),
        "max_network_cards": int(net.get("MaximumNetworkCards", 1)),
        "default_network_card_index": idx,
        "default_card_max_enis": default,
        "maximum_network_interfaces": int(net["MaximumNetworkInterfaces"]),
        "ipv4_per_interface": int(net["Ipv4AddressesPerInterface"]),
    }


def cross_check(upstream_types: dict, moto_types: dict, fields=CROSS_CHECK_FIELDS) -> list[tuple]:
    """(type, field, moto value, upstream value) for each disagreement on a type both know, sorted."""
    out = []
    for name in sorted(set(upstream_types) & set(moto_types)):
        u = upstream_limits(name, upstream_types[name])
        m = moto_limits(moto_types[name])
        for field in fields:
            if m[field] != u[field]:
                out.append((name, field, m[field], u[field]))
    return out


# ---------------------------------------------------------------- CSV


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def row(name: str, u: dict, vcpus: int | None) -> list[str]:
    """The CSV fields for one upstream entry; vcpus None -> empty field."""
    lim = upstream_limits(name, u)
    return [
        name,
        "" if vcpus is None else str(int(vcpus)),
        lim["hypervisor"],
        _fmt(lim["bare_metal"]),
        str(lim["max_network_cards"]),
        str(lim["default_network_card_index"]),
        str(lim["default_card_max_enis"]),
        str(lim["maximum_network_interfaces"]),
        str(lim["ipv4_per_interface"]),
        _fmt(lim["trunking_compatible"]),
        _fmt(lim["manual_upstream_entry"]),
    ]


def comment_line(moto_ver: str) -> str:
    return (
        f"# generated by tools/gen_instance_limits.py from aws/amazon-vpc-cni-k8s {VPC_CNI_VERSION} "
        f"({VPC_CNI_COMMIT}) pkg/vpc/vpc_ip_resource_limit.go; trunking_compatible from "
        f"aws/karpenter-provider-aws@{KARPENTER_COMMIT} zz_generated.vpclimits.go; default_vcpus "
        f"from moto {moto_ver} DescribeInstanceTypes data (empty = unknown); do not edit"
    )


def render(upstream: dict, moto_types: dict, moto_ver: str) -> str:
    out = io.StringIO()
    out.write(comment_line(moto_ver) + "\n")
    out.write(HEADER + "\n")
    types = upstream["types"]
    for name in sorted(types):
        if not name or name != name.strip():
            raise ValueError(f"bad instance type name {name!r}")
        m = moto_types.get(name)
        vcpus = int(m["VCpuInfo"]["DefaultVCpus"]) if m is not None else None
        fields = row(name, types[name], vcpus)
        for f in fields:
            if "," in f or "\n" in f or '"' in f:
                raise ValueError(f"unexpected CSV metacharacter in {fields}")
        out.write(",".join(fields) + "\n")
    return out.getvalue()


def generate(output: str) -> int:
    upstream = load_upstream()
    moto_types = load_moto()
    text = render(upstream, moto_types, moto_version())
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)

    types = upstream["types"]
    no_vcpu = sorted(set(types) - set(moto_types))
    print(f"wrote {len(types)} instance types to {output}", file=sys.stderr)
    print(f"{len(no_vcpu)} types without a vCPU count (not in moto {moto_version()})", file=sys.stderr)
    moto_only = sorted(set(moto_types) - set(types))
    if moto_only:
        print(f"{len(moto_only)} types in moto but not upstream: {' '.join(moto_only)}", file=sys.stderr)
    for label, fields in (("disagreement", CROSS_CHECK_FIELDS), ("info", CROSS_CHECK_INFO_FIELDS)):
        diffs = cross_check(types, moto_types, fields)
        print(f"moto vs upstream ({label}): {len(diffs)} differences", file=sys.stderr)
        for name, field, mv, uv in diffs:
            print(f"  {name}: {field} moto={mv!r} upstream={uv!r}", file=sys.stderr)
    return len(types)


def main(argv: list[str]) -> int:
    output = argv[1] if len(argv) > 1 else DEFAULT_OUTPUT
    generate(output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
