"""`make aws-trial`: the lab's egress table from a real account (docs/aws-trial.md).

The same scenarios as the lab (nat_lab.lab.scenarios), against a deployed environment: each zone's
egress probe measures, an act replaces the zone's NAT as an operator, Auto Scaling or EC2 would,
and the lab's report code writes the same rows, table and pictures under target/aws-trial/."""
