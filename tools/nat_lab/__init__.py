"""nat_lab: the local laboratory for nat-asg-hook.

Starts the AWS emulator (moto server) on a free loopback port, seeds a NAT world through the AWS
SDK, builds events, and runs the real binary (`replay`, `verify`, `reconcile`, or the Lambda path
under `cargo lambda watch`). Used by the tests, the demo and the benchmarks.
"""
