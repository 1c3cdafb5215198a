"""Fault-injection soak (issue #5): 50 events over 3 zones, with duplicates, reordered deliveries and
stale events for replaced instances, and the replaced instances' terminate actions, delivered to the
real binary (`replay`) through a proxy that
fails 20% of the requests the way AWS does (503 RequestLimitExceeded, 500 InternalError, connection
resets before and after the write, latency spikes), plus one-attempt outages of single actions.
Seeded (SOAK_SEED overrides) and bounded: 50 events, at most 3 deliveries each, each with the hook's
own 10 s deadline. What is checked after every invocation is in nat_lab.soak.invariants (the
emulator's state, read directly, never the logs); this test asserts that none of it was violated,
then reads the final state itself."""

from __future__ import annotations

import os

from nat_lab.proxy import Proxy
from nat_lab.soak import Settings, run_soak
from nat_lab.world import assert_converged, in_service


def test_soak_under_faults_never_a_false_success_nor_a_stale_move(fresh_moto, tmp_path):
    settings = Settings(seed=int(os.environ.get("SOAK_SEED", Settings.seed)))
    with Proxy(fresh_moto.endpoint, seed=settings.seed) as proxy:
        result = run_soak(fresh_moto, proxy, tmp_path, settings)
    print("\n" + result.summary())
    seed = f"seed {settings.seed} (log: {tmp_path / 'soak.log'})"

    # After every invocation: no false success, no stale move, no move but towards the event's
    # own instance, every failure reported as a Lambda error.
    assert result.violations == [], f"{seed}:\n" + "\n".join(result.violations)
    assert result.false_successes == 0
    assert result.invocations == result.successes + result.errors_reported

    # After the final reconcile, each group's EIP, source/dest check and routes are on its current instance.
    for group in result.world.groups:
        [current] = in_service(fresh_moto, group)
        assert assert_converged(fresh_moto, result.world, group) == current

    # The stream was what it claims to be, and the faults happened.
    assert result.events == settings.events
    for label in ("in-order", "reordered", "duplicate", "stale"):
        assert result.labels[label] > 0, f"{seed}: no {label} delivery: {dict(result.labels)}"
    for kind in ("launch-successful", "terminate", "scheduled"):
        assert result.kinds[kind] > 0, f"{seed}: no {kind} event: {dict(result.kinds)}"
    for outcome in ("applied", "unchanged", "stale"):
        assert result.outcomes[outcome] > 0, f"{seed}: no {outcome} outcome: {dict(result.outcomes)}"
    assert all(n > 0 for n in result.proxy["faults"].values()), result.proxy
    assert result.proxy["faults_after_forwarding"] > 0 and result.proxy["sdk_retries"] > 0, result.proxy
    # The outages made the hook report errors, and redelivery finished the job.
    assert result.errors_reported > 0 and result.redeliveries > 0, result.summary()
