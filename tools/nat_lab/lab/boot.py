"""Boots one lab NAT instance: builds its root file system and runs its user data there.

Run by the lab inside the instance's network namespace and a private mount namespace
(`ip netns exec NS unshare --mount --propagation private python -m nat_lab.lab.boot DIR`), so every
mount below disappears with the instance's last process and none reaches the machine.

The root (DIR/root) is the machine's /usr, read-only, with a writable, empty /etc, /var, /run,
/tmp, /root, /opt and /usr/local of the instance's own: what the user data writes stays in the
instance. /proc/sys is read-only except /proc/sys/net (the namespace's own): a `sysctl --system`
there cannot change the machine's kernel settings, and finds only the user data's own sysctl.d
files. The stand-ins (systemctl, dnf, aws) come first on PATH, from /opt/nat-lab/bin.

Then the user data runs as cloud-init runs it: as root, from its shebang, its output to DIR/console.log.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

PATH = "/opt/nat-lab/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
WRITABLE = ("etc", "var", "run", "tmp", "root", "opt", "usr/local")
SKELETON = ("usr/local/bin", "usr/local/sbin", "usr/local/lib", "usr/local/share", "var/log", "var/lib", "var/tmp", "var/cache")
ETC_FILES = ("passwd", "group", "nsswitch.conf", "ld.so.cache", "localtime")
ETC_EMPTY_DIRS = ("sysctl.d", "sysconfig", "systemd/system", "profile.d")
USER_DATA = "var/lib/cloud/instance/user-data.txt"


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def build_root(instance: Path) -> Path:
    root = instance / "root"
    state = instance / "state"  # the instance's writable directories, kept for the lab to read
    root.mkdir(parents=True, exist_ok=True)
    # The root is a mount point of its own, as an instance's is: `ip netns exec` (the self-check's
    # forwarding probe) makes `/` a slave mount, which fails on a plain directory.
    mount("--bind", str(root), str(root))
    for name in ("usr", "proc", "dev", "sys", *WRITABLE):
        (root / name).mkdir(parents=True, exist_ok=True)
    for link, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib"), ("lib64", "usr/lib64")):
        if not (root / link).is_symlink():
            (root / link).symlink_to(target)
    mount("--bind", "/usr", str(root / "usr"))
    mount("-o", "remount,bind,ro", str(root / "usr"))
    for name in WRITABLE:
        (state / name).mkdir(parents=True, exist_ok=True)
        mount("--bind", str(state / name), str(root / name))
    for name in SKELETON:
        (root / name).mkdir(parents=True, exist_ok=True)
    # The machine's own sysctl defaults (kernel.*, fs.*) are not the instance's.
    empty = instance / "empty"
    empty.mkdir(exist_ok=True)
    if (root / "usr/lib/sysctl.d").is_dir():
        mount("--bind", str(empty), str(root / "usr/lib/sysctl.d"))
    mount("--rbind", "/dev", str(root / "dev"))
    mount("-t", "proc", "proc", str(root / "proc"))
    mount("--bind", str(root / "proc/sys"), str(root / "proc/sys"))
    mount("-o", "remount,bind,ro", str(root / "proc/sys"))
    mount("--bind", str(root / "proc/sys/net"), str(root / "proc/sys/net"))
    mount("-o", "remount,bind,rw", str(root / "proc/sys/net"))
    mount("-t", "sysfs", "-o", "ro", "sysfs", str(root / "sys"))
    etc = root / "etc"
    for name in ETC_FILES:
        if Path("/etc", name).exists():
            shutil.copy2(Path("/etc", name), etc / name, follow_symlinks=True)
    for name in ETC_EMPTY_DIRS:
        (etc / name).mkdir(parents=True, exist_ok=True)
    (etc / "hosts").write_text("127.0.0.1 localhost\n")
    (etc / "resolv.conf").write_text("")
    for name in ("alternatives", "ssl", "ca-certificates"):
        if Path("/etc", name).is_dir():
            (etc / name).mkdir(exist_ok=True)
            mount("--bind", f"/etc/{name}", str(etc / name))
            mount("-o", "remount,bind,ro", str(etc / name))
    bin_dir = root / "opt/nat-lab/bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for standin in (instance / "standins").iterdir():
        shutil.copy2(standin, bin_dir / standin.name)
        (bin_dir / standin.name).chmod(0o755)
    user_data = root / USER_DATA
    user_data.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(instance / "user-data", user_data)
    user_data.chmod(0o700)
    return root


def main() -> None:
    instance = Path(sys.argv[1]).resolve()
    boot_delay = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    root = build_root(instance)
    environment = (instance / "environment").read_text()
    console = os.open(instance / "console.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(console, 1)
    os.dup2(console, 2)
    devnull = os.open("/dev/null", os.O_RDONLY)
    os.dup2(devnull, 0)
    time.sleep(boot_delay)  # the rest of an EC2 boot, before cloud-init runs the user data
    os.chroot(root)
    os.chdir("/")
    env = {"PATH": PATH, "HOME": "/root", "LANG": "C.UTF-8", "TERM": "dumb"}
    # The lab's settings for the scripts the user data runs (e.g. nat-self-check's retry budget).
    for line in environment.splitlines():
        key, _, value = line.partition("=")
        if key:
            env[key] = value
    os.execve("/" + USER_DATA, ["/" + USER_DATA], env)


if __name__ == "__main__":
    main()
