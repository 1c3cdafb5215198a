"""AWS Fault Injection Service's Spot interruption, as one experiment template: EC2's two-minute
warning to a Spot instance, then its reclaim. The scenarios start it on a real account and in the lab
alike (nat_lab.lab.scenarios); the lab's emulator carries it out, and checks that it does at every
start (nat_lab.moto_shims.selfcheck)."""

from __future__ import annotations

SPOT_INTERRUPTION_ACTION = "aws:ec2:send-spot-instance-interruptions"
NOTICE = "PT2M"  # durationBeforeInterruption: EC2's own two minutes (FIS's shortest)


def spot_interruption(instance_arn: str, role_arn: str, token: str, description: str, tags: dict[str, str] | None = None) -> dict:
    """CreateExperimentTemplate's parameters: interrupt the one Spot instance `instance_arn`."""
    return {
        "clientToken": token,
        "description": description,
        "roleArn": role_arn,
        "stopConditions": [{"source": "none"}],
        "targets": {"nat": {"resourceType": "aws:ec2:spot-instance", "resourceArns": [instance_arn], "selectionMode": "ALL"}},
        "actions": {
            "interrupt": {
                "actionId": SPOT_INTERRUPTION_ACTION,
                "parameters": {"durationBeforeInterruption": NOTICE},
                "targets": {"SpotInstances": "nat"},
            }
        },
        **({"tags": tags} if tags else {}),
    }
