"""The operator's first minutes at 3 a.m., on the real binary against moto: what `verify`, `replay`
and `reconcile` say and which exit status they give when they cannot look (no region, a wrong
region, an endpoint that does not answer, groups that are not where it looked), when an event is
from another region, and when no subcommand is given. Every case also checks that the emulator's
state is untouched, and every message is one line that says what to set or check."""

from __future__ import annotations

import json

import pytest

from nat_lab import events, hook
from nat_lab.process import free_port
from nat_lab.world import in_service, snapshot

# The README's exit-status table.
HEALTHY, UNHEALTHY, USAGE, BLIND = 0, 1, 2, 3


def one_sentence(stderr: str) -> str:
    """The tool's stderr: one line, prefixed, with no SDK Debug dump in it."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("nat-asg-hook: "), stderr
    for dump in ("DispatchFailure", "ConnectorError", "SdkError", "Some(", "{ source"):
        assert dump not in lines[0], lines[0]
    return lines[0]


def test_no_region_could_not_look_names_the_zones_region(world, moto, config_file):
    before = snapshot(moto, world)
    env = {k: v for k, v in moto.env().items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    for command in (["verify"], ["reconcile"], ["replay", str(events.EVENTS / "launch-successful.json")]):
        run = hook.run(env, *command, config=config_file)
        assert run.code == BLIND, (command, run.code, run.stderr)
        assert "no AWS region is set: set AWS_REGION=us-east-1" in one_sentence(run.stderr)
        assert run.stdout == ""
    assert snapshot(moto, world) == before


def test_an_unreachable_endpoint_is_one_line_and_exit_3_not_a_zone_down(world, moto, config_file):
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = dict(moto.env(), AWS_ENDPOINT_URL=endpoint)
    for command in (["verify"], ["verify", "--json"], ["reconcile", "--dry-run"]):
        run = hook.run(env, *command, config=config_file)
        assert run.code == BLIND, (command, run.code, run.stderr)
        line = one_sentence(run.stderr)
        assert f"could not look: could not reach {endpoint}" in line and "AWS_ENDPOINT_URL" in line, line
        assert run.stdout == ""


def test_a_wrong_region_says_which_region_the_zones_are_in(world, moto, config_file):
    env = dict(moto.env(), AWS_REGION="eu-west-1", AWS_DEFAULT_REGION="eu-west-1")
    run = hook.run(env, "verify", config=config_file)
    assert run.code == BLIND, run.stderr
    line = one_sentence(run.stderr)
    assert "the AWS region is eu-west-1, but the configured zones are in us-east-1: set AWS_REGION=us-east-1" in line


def test_when_no_configured_group_exists_where_it_looked_the_region_or_account_may_be_wrong(world, moto, tmp_path):
    config = world.config()
    config["groups"] = {f"{name}-elsewhere": group for name, group in config["groups"].items()}
    path = tmp_path / "other-stack.json"
    path.write_text(json.dumps(config))
    run = hook.run(moto.env(), "verify", config=path)
    assert run.code == BLIND, run.stderr
    line = one_sentence(run.stderr)
    assert "none of the 3 configured Auto Scaling groups exists in us-east-1: the region or the account may be wrong" in line
    assert run.stdout.count("MISCONFIGURED: ") == 3, run.stdout  # the zones are still shown


def test_one_missing_group_is_that_zones_problem_exit_1(world, moto, tmp_path):
    config = world.config()
    name = sorted(config["groups"])[0]
    config["groups"][f"{name}-gone"] = config["groups"].pop(name)
    path = tmp_path / "one-missing.json"
    path.write_text(json.dumps(config))
    run = hook.run(moto.env(), "verify", config=path)
    assert run.code == UNHEALTHY, run.stdout + run.stderr
    assert f"MISCONFIGURED: {name}-gone" in run.stdout


def test_an_event_from_another_region_is_refused_before_anything_moves(world, moto, config_file, tmp_path):
    g = next(iter(world.groups.values()))
    [instance] = in_service(moto, g.name)
    event = events.launch(g.name, instance, g.zone)
    event["region"] = "us-west-2"
    before = snapshot(moto, world)
    run = hook.run(moto.env(), "replay", str(events.write(event, tmp_path)), config=config_file)
    assert run.code == USAGE, run.stderr
    assert "the event is from us-west-2, the AWS region is us-east-1: replay it with AWS_REGION=us-west-2" in one_sentence(run.stderr)
    assert snapshot(moto, world) == before


@pytest.mark.parametrize("where", ["flag", "environment"])
def test_no_subcommand_outside_lambda_lists_the_subcommands_and_exits_2(world, moto, config_file, where):
    env = moto.env()
    args: tuple[str, ...] = ()
    if where == "environment":
        env["NAT_ASG_HOOK_CONFIG"] = config_file.read_text()
        run = hook.run(env, *args)
    else:
        run = hook.run(env, config=config_file)
    assert run.code == USAGE, (run.code, run.stderr)
    line = one_sentence(run.stderr)
    assert "no subcommand: use one of replay <FILE>, verify, reconcile" in line, line
    assert "panicked" not in run.stderr and "pass --config FILE" not in run.stderr
