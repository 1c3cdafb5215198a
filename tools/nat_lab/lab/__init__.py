"""The data-plane lab: real packets through the nat-instance module's real user data, in Linux network
namespaces that have no link to the machine's network (root only).

- `netns`: the namespaces (named `nl<pid>-<n>-<role>`, always removed; a crashed lab's are swept);
- `motoserver`, `emulator`: the lab's moto (nat_lab's lifecycle shim, the temporary public IP, a
  health check with a grace) and its change feed;
- `world`: the root stack's layout seeded into moto, each zone's NAT group as Terraform plans the module;
- `instance`, `boot`, `standins/`: each instance a namespace running its user data in a chroot, with
  IMDSv2, systemctl, dnf and the AWS CLI stood in;
- `fabric`: the VPC router and internet gateway that follow moto's routes, EIPs and source/dest checks;
- `traffic`: the echo on the "internet" and the private hosts' probes;
- `eventbridge`, `hookwire`: the events AWS would send, delivered to the real binary behind
  `cargo lambda watch` and the latency proxy;
- `core`: the lab assembled; `scenarios`: what happens to a NAT; `report`: egress.json, egress.md;
- `live_egress`: the demo's last part, two stories told live in the lab's world.

`python -m nat_lab.lab` (make lab) runs every scenario; tests/lab/test_lab.py is the short lab.
"""
