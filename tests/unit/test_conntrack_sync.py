"""nat-conntrack-sync's reading of conntrack's lines (the module's script, imported as it ships):
which flows a new NAT loads, and with what. Whether the loaded flows carry the connections is the
lab's to show (tests/lab/test_lab.py, planned refresh: both kinds of long-lived connections)."""

from __future__ import annotations

import importlib.machinery
import importlib.util

from nat_lab import REPO

SCRIPT = REPO / "terraform" / "modules" / "nat-instance" / "nat-conntrack-sync.py"
LISTED = (
    "tcp      6 431999 ESTABLISHED src=10.2.1.5 dst=198.51.100.9 sport=40412 dport=7000 "
    "src=198.51.100.9 dst=10.2.0.4 sport=7000 dport=40412 [ASSURED] mark=0 use=1"
)
EVENT = (
    " [UPDATE] tcp      6 432000 ESTABLISHED src=10.2.1.5 dst=198.51.100.9 sport=40413 dport=443 "
    "src=198.51.100.9 dst=10.2.0.4 sport=443 dport=1025 [ASSURED]"
)


def script():
    loader = importlib.machinery.SourceFileLoader("nat_conntrack_sync", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_an_established_flow_is_read_from_a_listing_and_from_an_event_with_its_mapped_port():
    sync = script()
    assert sync.established(LISTED) == ("10.2.1.5", "198.51.100.9", "40412", "7000", "10.2.0.4", "40412", "431999")
    # Masquerade had to pick another port: the reply's destination port is the one to keep.
    assert sync.established(EVENT) == ("10.2.1.5", "198.51.100.9", "40413", "443", "10.2.0.4", "1025", "432000")


def test_anything_but_an_established_tcp_flow_is_not_handed_over():
    sync = script()
    for line in (
        LISTED.replace("ESTABLISHED", "TIME_WAIT"),
        LISTED.replace("ESTABLISHED", "SYN_SENT").replace(" [ASSURED]", " [UNREPLIED]"),
        "udp      17 29 src=10.2.1.5 dst=198.51.100.9 sport=5353 dport=53 src=198.51.100.9 dst=10.2.0.4 sport=53 dport=5353",
        "conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.",
        "",
        "tcp      6 431999 ESTABLISHED src=10.2.1.5 dst=198.51.100.9",  # cut short
    ):
        assert sync.established(line) is None, line


def test_only_what_the_old_nat_masqueraded_is_loaded_with_the_same_mapped_port_on_the_new_address(monkeypatch):
    sync = script()
    ran = []
    monkeypatch.setattr(sync.subprocess, "run", lambda command, **_: ran.append(command) or type("Done", (), {"returncode": 0})())
    assert sync.load(sync.established(EVENT), "10.2.0.4", "10.2.0.9")
    [command] = ran
    assert command[:2] == ["conntrack", "-I"]
    assert command[command.index("--src-nat") + 1] == "10.2.0.9:1025"
    assert command[command.index("--state") + 1] == "ESTABLISHED"
    # A flow keeps what it had left, never more than the configured timeout.
    assert command[command.index("-t") + 1] == "7440"
    monkeypatch.setenv("SYNC_TIMEOUT", "500000")
    sync.load(sync.established(EVENT), "10.2.0.4", "10.2.0.9")
    assert ran[-1][ran[-1].index("-t") + 1] == "432000"
    # Forwarded by another NAT (its reply goes elsewhere), or the old NAT's own connection: nothing runs.
    assert not sync.load(sync.established(EVENT), "10.2.0.7", "10.2.0.9")
    own = LISTED.replace("src=10.2.1.5", "src=10.2.0.4", 1)
    assert not sync.load(sync.established(own), "10.2.0.4", "10.2.0.9")
    assert len(ran) == 2


def test_a_table_at_half_its_size_takes_no_more(monkeypatch):
    sync = script()
    ran = []
    monkeypatch.setattr(sync.subprocess, "run", lambda command, **_: ran.append(command) or type("Done", (), {"returncode": 0})())
    monkeypatch.setattr(sync, "room", lambda: False)
    assert not sync.load(sync.established(LISTED), "10.2.0.4", "10.2.0.9") and ran == []
