#!/usr/bin/env python3
# nat-conntrack-sync: a NAT's established TCP connections, handed to the NAT that replaces it, so
# that they survive a planned refresh (docs/design.md, "Connections across a refresh").
#
#   nat-conntrack-sync serve OWN_IP        every NAT, for its life (nat-conntrack-sync.service):
#                                          on TCP OWN_IP:PORT, to each peer, its established TCP
#                                          flows (one `conntrack -L` line each), "DUMPED", then
#                                          every flow that becomes established, until the peer goes
#   nat-conntrack-sync pull OLD_IP OWN_IP  a new NAT, before it completes its launch: reads the
#                                          serving NAT's flows and loads each one that NAT
#                                          masqueraded (its reply goes to OLD_IP) with the same
#                                          mapped port on OWN_IP; touches READY once the dump is
#                                          loaded, then keeps loading new flows until OLD_IP goes
#
# After the cutover the zone's EIP, mapped by AWS onto OWN_IP, keeps every flow's address and port:
# the server's next packet finds its flow on the new NAT instead of nothing. Only TCP. Who may read
# the port is the security group's business (the NAT group's own instances); a pulling NAT takes
# state only from the connection it opened to the instance that holds its zone's EIP.
import os
import re
import socket
import subprocess
import sys
import threading

PORT = int(os.environ.get("SYNC_PORT", "3780"))
READY = os.environ.get("SYNC_READY", "/run/nat-conntrack-sync.ready")
FIELDS = re.compile(r"(src|dst|sport|dport)=(\S+)")


# A peer that vanished (terminated: no reset) ends the stream in about 25 s, not never.
def keepalive(conn):
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 10)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 5)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)


# The flow in a `conntrack -L` / `-E` line: (orig src, dst, sport, dport, reply dst, reply dport,
# seconds left), or None for anything but an established TCP flow.
def established(line):
    words = line.split()
    if " ESTABLISHED " not in line or "tcp" not in words[:2]:
        return None
    found = [v for _, v in FIELDS.findall(line)]
    left = words[words.index("tcp") + 2]
    if len(found) < 8 or not left.isdigit():
        return None
    return found[0], found[1], found[2], found[3], found[5], found[7], left


def send_state(conn):
    keepalive(conn)
    events = subprocess.Popen(
        ["conntrack", "-E", "-p", "tcp", "-e", "UPDATE"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        listed = subprocess.run(["conntrack", "-L", "-p", "tcp"], capture_output=True, text=True, check=False).stdout
        lines = [line for line in listed.splitlines() if established(line)]
        conn.sendall(("\n".join(lines + ["DUMPED"]) + "\n").encode())
        for line in events.stdout:
            if established(line):
                conn.sendall(line.encode())
    except OSError:
        pass
    finally:
        events.kill()
        conn.close()


def serve(own_ip):
    server = socket.create_server((own_ip, PORT))
    while True:
        conn, _ = server.accept()
        threading.Thread(target=send_state, args=(conn,), daemon=True).start()


# Room for one more: a flow table at half its size takes nothing more (a NAT replaced because its
# table filled must not hand the fill to its successor).
def room():
    try:
        with open("/proc/sys/net/netfilter/nf_conntrack_count") as count, open("/proc/sys/net/netfilter/nf_conntrack_max") as most:
            return int(count.read()) * 2 < int(most.read())
    except (OSError, ValueError):
        return True


def load(flow, old_ip, own_ip):
    src, dst, sport, dport, reply_dst, mapped, left = flow
    if reply_dst != old_ip or src == old_ip or not room():
        return False  # not masqueraded by the old NAT (forwarded elsewhere, or its own), or no room
    command = ["conntrack", "-I", "-p", "tcp", "-s", src, "-d", dst, "--sport", sport, "--dport", dport]
    command += ["-r", dst, "-q", src, "--reply-port-src", dport, "--reply-port-dst", sport]
    command += ["--src-nat", f"{own_ip}:{mapped}", "--state", "ESTABLISHED", "-u", "SEEN_REPLY,ASSURED"]
    command += ["-t", str(min(int(left), int(os.environ.get("SYNC_TIMEOUT", "7440"))))]  # what it had left
    done = subprocess.run(command, capture_output=True, check=False)
    return done.returncode == 0  # an entry that exists already (an update of a loaded flow) fails


def pull(old_ip, own_ip):
    conn = socket.create_connection((old_ip, PORT), timeout=5)
    conn.settimeout(None)
    keepalive(conn)
    dumped, loaded, why = False, 0, "closed the stream"
    try:
        for raw in conn.makefile("r"):
            line = raw.strip()
            if line == "DUMPED":
                dumped = True
                with open(READY, "w") as ready:
                    ready.write(f"{loaded}\n")
                print(f"loaded {loaded} established flows from {old_ip}", flush=True)
                continue
            flow = established(" " + line + " ")
            if flow is not None and load(flow, old_ip, own_ip):
                loaded += 1
    except OSError as exc:  # the old NAT went without a word (keepalive)
        why = f"went ({type(exc).__name__})"
    print(f"{old_ip} {why}: {loaded} flows loaded{'' if dumped else ' (no whole dump)'}", flush=True)


def main(argv):
    if argv[1:2] == ["serve"] and len(argv) == 3:
        serve(argv[2])
    elif argv[1:2] == ["pull"] and len(argv) == 4:
        pull(argv[2], argv[3])
    else:
        print("usage: nat-conntrack-sync serve OWN_IP | pull OLD_IP OWN_IP", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
