"""The fabric: a VPC router namespace that makes the data plane follow the emulator.

Every host (a zone's private host, a NAT instance) has one veth to the router namespace (`vpc`),
which plays the VPC's implicit router, its route tables and the internet gateway:

- each host's interface on the router holds the host subnet's gateway address (.1), with proxy ARP:
  a host reaches everything through the router, as in a VPC;
- `to <VPC CIDR> lookup main` (the `local` route: /32 routes to every live host), then per host
  `iif <its interface> lookup <its subnet's route table>`; each route table's 0.0.0.0/0 becomes
  `via <ENI's address>` when the ENI belongs to a live instance, `blackhole` otherwise (AWS marks
  such a route blackhole; moto keeps it `active`), `via <internet>` for the internet gateway;
- the internet gateway is a stateless 1:1 NAT (nftables maps): a private address leaves with the
  public address associated with its ENI (the EIP, or the temporary public IP before it), and a
  packet to a public address is delivered to the ENI holding it; anything else is dropped;
- an ENI whose source/dest check is on (the instance's and the ENI's flag both, moto keeps two)
  drops forwarded packets: on its interface, nothing leaves with another source address, and
  nothing is delivered to another destination address.

The internet namespace (`inet`) routes every public address to the gateway; it is not linked to
the machine's network.
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass, field

from ..state import Snapshot, SnapshotRoute
from . import netns

INET_ADDRESS = "100.64.0.1"  # the internet side of the gateway link
GATEWAY_ADDRESS = "100.64.0.2"
ECHO_ADDRESS = "203.0.113.10"  # TEST-NET-3: the echo service ("the internet")
CHECK_ADDRESSES = ("203.0.113.20", "203.0.113.21")  # the NATs' check endpoints (two independent services)
LIVE = ("pending", "running")


@dataclass
class Attachment:
    ifname: str  # on the router
    ns: str
    ip: str
    subnet: str
    instance: str | None = None  # a NAT instance; None for a private host


@dataclass
class View:
    """The fabric's current translation of the emulator, for the report and the timelines."""

    routes: dict[str, str] = field(default_factory=dict)  # route table -> target (instance id, "igw", "blackhole", "none")
    public: dict[str, str] = field(default_factory=dict)  # private ip -> public ip
    source_dest_check: dict[str, bool] = field(default_factory=dict)  # instance id -> on


class Fabric:
    def __init__(self, registry: netns.Registry, vpc_id: str, vpc_cidr: str):
        self.registry = registry
        self.vpc_id = vpc_id
        self.vpc_cidr = vpc_cidr
        self.vpc = registry.add("vpc")
        self.inet = registry.add("inet")
        self.attachments: dict[str, Attachment] = {}
        self.tables: dict[str, int] = {}
        self.blocked: set[str] = set()  # instance ids whose own egress the lab cuts (a broken network)
        self.checks_unreachable = False  # the check endpoints drop everything (outside trouble), the internet works
        self.view = View()
        self._applied_routes: dict[int, str] = {}
        self._applied_rules: set[tuple[str, int]] = set()
        self._ruleset = ""
        self._counter = 0
        self._lock = threading.RLock()
        netns.veth(self.vpc, "igw", self.inet, "wan")
        netns.ip(self.inet, "addr", "add", f"{INET_ADDRESS}/30", "dev", "wan")
        netns.ip(self.inet, "link", "set", "wan", "up")
        for address in (ECHO_ADDRESS, *CHECK_ADDRESSES):
            netns.ip(self.inet, "addr", "add", f"{address}/32", "dev", "lo")
        netns.ip(self.inet, "route", "add", "default", "via", GATEWAY_ADDRESS)
        netns.ip(self.vpc, "addr", "add", f"{GATEWAY_ADDRESS}/30", "dev", "igw")
        netns.ip(self.vpc, "link", "set", "igw", "up")
        netns.sysctl(
            self.vpc,
            **{
                "net.ipv4.ip_forward": 1,
                "net.ipv4.conf.all.rp_filter": 0,
                "net.ipv4.conf.default.rp_filter": 0,
                "net.ipv4.conf.all.send_redirects": 0,
                "net.ipv4.conf.default.send_redirects": 0,
            },
        )
        netns.run("ip", "-n", self.vpc, "rule", "add", "pref", "100", "to", vpc_cidr, "lookup", "main")
        self._load_ruleset(self._render_ruleset({}, set(), set()))

    # --- hosts ------------------------------------------------------------------------------------

    def attach(self, key: str, ns: str, ip: str, subnet_cidr: str, subnet: str, instance: str | None = None) -> Attachment:
        """Connect namespace `ns` as host `ip` of `subnet_cidr` (its eth0), default route via the
        subnet's gateway (.1, the VPC router)."""
        with self._lock:
            self._counter += 1
            ifname = f"h{self._counter}"
            gateway = str(ipaddress.ip_network(subnet_cidr).network_address + 1)
            prefix = ipaddress.ip_network(subnet_cidr).prefixlen
            netns.veth(self.vpc, ifname, ns, "eth0")
            netns.ip(ns, "addr", "add", f"{ip}/{prefix}", "dev", "eth0")
            netns.ip(ns, "link", "set", "eth0", "up")
            netns.ip(ns, "route", "add", "default", "via", gateway)
            netns.ip(self.vpc, "addr", "add", f"{gateway}/32", "dev", ifname)
            netns.ip(self.vpc, "link", "set", ifname, "up")
            netns.sysctl(self.vpc, **{f"net.ipv4.conf.{ifname}.proxy_arp": 1, f"net.ipv4.conf.{ifname}.rp_filter": 0})
            netns.ip(self.vpc, "route", "replace", f"{ip}/32", "dev", ifname, "src", gateway)
            attachment = Attachment(ifname, ns, ip, subnet, instance)
            self.attachments[key] = attachment
            return attachment

    def detach(self, key: str) -> None:
        """Cut a host off at once (an instance that stopped running forwards nothing more, whatever
        its processes still do while they are being stopped): its veth goes, and with it its routes."""
        with self._lock:
            attachment = self.attachments.pop(key, None)
            if attachment is not None:
                netns.ip(self.vpc, "link", "del", attachment.ifname, check=False)
                self._applied_rules = {r for r in self._applied_rules if r[0] != attachment.ifname}

    # --- following the emulator -------------------------------------------------------------------

    def follow(self, state: Snapshot) -> View:
        """Make routes, the gateway's 1:1 NAT and the source/dest checks what `state` says."""
        with self._lock:
            instances = state.instances
            live = {a.instance: a for a in self.attachments.values() if a.instance and state.state_of(a.instance) in LIVE}
            table_of_subnet = {}
            main_table = next((t for t, v in state.route_tables.items() if v.main and v.vpc == self.vpc_id), None)
            for table_id, table in state.route_tables.items():
                for subnet in table.subnets:
                    table_of_subnet[subnet] = table_id
            view = View()
            commands = []
            wanted_rules = set()
            for attachment in self.attachments.values():
                table_id = table_of_subnet.get(attachment.subnet, main_table)
                if table_id is None:
                    continue
                number = self.tables.setdefault(table_id, 100 + len(self.tables))
                wanted_rules.add((attachment.ifname, number))
            for table_id, number in self.tables.items():
                target, command = self._default_route(state.default_route(table_id), state, live)
                view.routes[table_id] = target
                if self._applied_routes.get(number) != command:
                    commands.append(f"route replace {command} table {number}")
                    self._applied_routes[number] = command
            for ifname, number in sorted(wanted_rules - self._applied_rules):
                commands.append(f"rule add pref {1000 + number} iif {ifname} lookup {number}")
            netns.ip_batch(self.vpc, commands)
            self._applied_rules |= wanted_rules
            public = {}
            checked = set()
            for instance_id, attachment in live.items():
                address = state.public_ip(instance_id)
                if address:
                    public[attachment.ip] = address
                view.source_dest_check[instance_id] = instances[instance_id].source_dest_check
                if instances[instance_id].source_dest_check:
                    checked.add(attachment.ifname)
            view.public = public
            blocked = {live[i].ifname for i in self.blocked if i in live}
            ruleset = self._render_ruleset(public, checked, blocked)
            if ruleset != self._ruleset:
                self._load_ruleset(ruleset)
            self.view = view
            return view

    def _default_route(self, route: SnapshotRoute | None, state: Snapshot, live: dict[str, Attachment]) -> tuple[str, str]:
        if route is None:
            return "none", "blackhole default"
        if route.gateway and str(route.gateway).startswith("igw-"):
            return "igw", f"default via {INET_ADDRESS} dev igw"
        interface = state.interface(route.eni)
        instance_id = route.instance or (interface.instance if interface else None)
        attachment = live.get(instance_id or "")
        if attachment is None:
            return "blackhole", "blackhole default"
        return instance_id, f"default via {attachment.ip} dev {attachment.ifname} onlink"

    def _render_ruleset(self, public: dict[str, str], checked: set[str], blocked: set[str]) -> str:
        def elements(pairs: dict[str, str]) -> str:
            return f"elements = {{ {', '.join(f'{k} : {v}' for k, v in sorted(pairs.items()))} }}" if pairs else ""

        attachments = {a.ifname: a for a in self.attachments.values()}
        check_rules = []
        for ifname in sorted(checked):
            ip = attachments[ifname].ip
            check_rules.append(f'    iifname "{ifname}" ip saddr != {ip} drop')
            check_rules.append(f'    oifname "{ifname}" ip daddr != {ip} drop')
        if self.checks_unreachable:
            # dropped, not refused: the endpoints hang (the self-check's curl runs into its --max-time)
            check_rules.append(f"    ip daddr {{ {', '.join(CHECK_ADDRESSES)} }} drop")
        for ifname in sorted(blocked):
            # refused, not dropped: its self-check fails at once instead of after curl's timeout
            check_rules.append(f'    iifname "{ifname}" ip daddr != {self.vpc_cidr} reject with icmp type admin-prohibited')
        return "\n".join(
            [
                "table ip vpc",
                "delete table ip vpc",
                "table ip vpc {",
                f"  map pub2priv {{ type ipv4_addr : ipv4_addr; {elements({v: k for k, v in public.items()})} }}",
                f"  map priv2pub {{ type ipv4_addr : ipv4_addr; {elements(public)} }}",
                "  chain inbound {",
                "    type filter hook prerouting priority raw; policy accept;",
                '    iifname "igw" ip daddr set ip daddr map @pub2priv notrack accept',
                '    iifname "igw" drop',
                "    notrack",
                "  }",
                "  chain forward {",
                "    type filter hook forward priority filter; policy accept;",
                *check_rules,
                '    oifname "igw" ip saddr set ip saddr map @priv2pub accept',
                '    oifname "igw" drop',
                "  }",
                "}",
                "",
            ]
        )

    def _load_ruleset(self, ruleset: str) -> None:
        netns.nft(self.vpc, ruleset)
        self._ruleset = ruleset
