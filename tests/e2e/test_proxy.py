"""The fault-injecting proxy (nat_lab.proxy) on its own, with boto3 as the client: what it records,
and that each fault lands on its side of the forwarding. The soak and the concurrency tests rely on
both; here they are checked against the emulator's state directly."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError

from nat_lab.moto import CREDENTIALS, REGION
from nat_lab.proxy import Faults, Proxy, rounds

ONE_ATTEMPT = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=10)


def ec2_through(proxy: Proxy):
    return boto3.client("ec2", endpoint_url=proxy.endpoint, region_name=REGION, config=ONE_ATTEMPT, **CREDENTIALS)


def vpcs(moto) -> set[str]:
    return {v["CidrBlock"] for v in moto.client("ec2").describe_vpcs()["Vpcs"]}


def test_requests_are_recorded_in_rounds_with_the_latency_added(fresh_moto):
    with Proxy(fresh_moto.endpoint, latency=0.05) as proxy:
        ec2 = ec2_through(proxy)
        ec2.create_vpc(CidrBlock="10.9.0.0/16")
        ec2.describe_vpcs()
        records = proxy.since()
    assert [(r.service, r.action, r.attempt, r.status) for r in records] == [("ec2", "CreateVpc", 1, 200), ("ec2", "DescribeVpcs", 1, 200)]
    assert [r.mutating for r in records] == [False, False]  # CreateVpc is not one of the hook's writes
    assert all(r.seconds >= 0.05 for r in records)
    assert [[r.action for r in round_] for round_ in rounds(records)] == [["CreateVpc"], ["DescribeVpcs"]]
    assert records[0].params["CidrBlock"] == "10.9.0.0/16"


def test_a_throttle_never_reaches_the_emulator_and_a_500_comes_after_the_write(fresh_moto):
    with Proxy(fresh_moto.endpoint) as proxy:
        ec2 = ec2_through(proxy)
        proxy.set(faults=Faults.always("throttle", {"CreateVpc"}))
        with pytest.raises(ClientError) as throttled:
            ec2.create_vpc(CidrBlock="10.7.0.0/16")
        assert throttled.value.response["Error"]["Code"] == "RequestLimitExceeded"
        assert "10.7.0.0/16" not in vpcs(fresh_moto)

        proxy.set(faults=Faults.always("error500", {"CreateVpc"}))
        with pytest.raises(ClientError) as failed:
            ec2.create_vpc(CidrBlock="10.8.0.0/16")
        assert failed.value.response["Error"]["Code"] == "InternalError"
        assert "10.8.0.0/16" in vpcs(fresh_moto)  # the write happened; the client cannot know

        proxy.set(faults=Faults.always("reset", {"DescribeVpcs"}))
        with pytest.raises(ConnectionClosedError):  # a TCP reset, no answer
            ec2.describe_vpcs()
        stats = proxy.stats(proxy.since())
    assert stats["faults"] == {"throttle": 1, "error500": 1, "reset": 1, "spike": 0}
    assert stats["requests"] == 3
