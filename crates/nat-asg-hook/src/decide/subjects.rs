//! The subjects: what each trigger asks of the planner (a launch, a leaving or warned NAT, the
//! schedule, a drain), and when a leaving instance's terminate action is completed.

use std::collections::BTreeMap;

use crate::config::Config;
use crate::decide::ownership::{launched_may_move, tables_targeting};
use crate::decide::planning::{Ctx, follow_own};
use crate::decide::refusals::{Refusal, check_zone, missing};
use crate::decide::{Decision, Plan};
use crate::model::{DrainMark, World};

/// How handing a leaving instance's zone over went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handover {
    /// Done, or nothing needed doing.
    Done,
    /// Failed; `retryable` when a later delivery may succeed (throttling, a deadline, EC2 lag).
    Failed { retryable: bool },
}

/// Whether to complete the leaving instance's terminate action (CONTINUE) now. After a handover,
/// yes. After a failure a retry can fix, no: the handler retries the handover within the
/// invocation, recording a heartbeat on the action before each retry and once more at its deadline,
/// then Lambda's own retries (1 and 2 minutes later) try again while the instance still forwards;
/// the heartbeat's default result (CONTINUE) bounds the wait (docs/design.md, "AWS's clocks").
/// After a failure no retry can fix (configuration, IAM), yes: holding the instance helps no one,
/// and the error is reported and alarmed. A dry run completes nothing.
pub fn complete_terminate(handover: Handover, dry_run: bool) -> bool {
    !dry_run && !matches!(handover, Handover::Failed { retryable: true })
}

pub(super) fn launched(config: &Config, world: &World, name: &str, id: &str, fresh: bool) -> Result<Decision, Refusal> {
    let Some(group) = config.group(name) else {
        return Ok(Decision::Ignored { reason: format!("{name} is not a configured group") });
    };
    if matches!(world.members.get(name), Some(None)) {
        return Err(Refusal::GroupMissing { group: name.to_owned() });
    }
    // A drained group's new NAT does not take the zone back: the zone stays where the schedule
    // keeps it (on a healthy sibling), whatever the launch says, until `undrain`.
    if world.drain_mark(name).is_some() {
        return Ok(match Ctx::new(config, world, None) {
            Ok(ctx) => Decision::Plan(ctx.plan(std::iter::once(name), None)),
            Err(decision) => decision,
        });
    }
    let instance = match launched_may_move(world, name, id, fresh) {
        Ok(instance) => instance,
        Err(decision) => return Ok(decision),
    };
    check_zone(name, group, instance)?;
    if let Some(refusal) = missing(name, group, world) {
        return Err(refusal);
    }
    if instance.primary_eni.is_none() {
        return Ok(Decision::NotYetVisible { reason: format!("{id} has no primary network interface yet") });
    }
    // A launch concerns its own zone only: the other zones' owners are not needed (nor waited for).
    let ctx = Ctx { config, world, owners: BTreeMap::new() };
    Ok(Decision::Plan(Plan { zones: vec![follow_own(name, group, instance, &ctx)], refused: Vec::new() }))
}

pub(super) fn leaving(config: &Config, world: &World, group: Option<&str>, id: &str, by_group: bool) -> Decision {
    let instance = world.instance(id);
    if !by_group && let Some(i) = instance.filter(|i| i.state.is_live()) {
        return Decision::Stale { reason: format!("{id} is {} again", i.state.name()) };
    }
    // A terminate action is real only while the group holds the instance as Terminating: one for an
    // instance it holds in service (a forged, replayed or crossed event) must not move its zone.
    if by_group
        && let Some(name) = group
        && let Some(member) =
            world.members.get(name).and_then(Option::as_ref).and_then(|m| m.iter().find(|m| m.instance_id == id))
        && !member.lifecycle_state.starts_with("Terminating")
    {
        return Decision::Stale {
            reason: format!(
                "{name} holds {id} as {}, not Terminating: its terminate action is not real",
                member.lifecycle_state
            ),
        };
    }
    let own = group.or(instance.and_then(|i| i.group.as_deref())).filter(|g| config.group(g).is_some());
    hand_over(config, world, own, id)
}

/// The zones of `own` (the leaving instance's group, when configured) and of every configured table
/// that goes to `id`, each planned without `id`: to the group's newer proven instance, else to a
/// healthy sibling.
fn hand_over(config: &Config, world: &World, own: Option<&str>, id: &str) -> Decision {
    let mut zones: Vec<&str> = own.into_iter().collect();
    for table in tables_targeting(config, world, id) {
        if let Some(name) = config.group_of_table(&table.id).filter(|n| !zones.contains(n)) {
            zones.push(name);
        }
    }
    if zones.is_empty() {
        return Decision::Ignored {
            reason: format!("no configured route table goes to {id}, and no NAT group holds it"),
        };
    }
    match Ctx::new(config, world, Some(id)) {
        Ok(ctx) => Decision::Plan(ctx.plan(zones.into_iter(), Some(id))),
        Err(decision) => decision,
    }
}

/// A warned instance still runs: its zone is handed over while it forwards. One already gone is a
/// state change. Without proof in the event, the group must hold the instance Unhealthy (as the
/// NAT marks itself before it reports): a report alone, forged or crossed, moves nothing.
pub(super) fn warned(
    config: &Config,
    world: &World,
    group: Option<&str>,
    id: &str,
    proof: bool,
    fresh: bool,
) -> Decision {
    let instance = world.instance(id);
    if instance.is_some_and(|i| !i.state.is_live()) {
        return leaving(config, world, group, id, false);
    }
    let Some(name) = group.or(instance.and_then(|i| i.group.as_deref())).filter(|g| config.group(g).is_some()) else {
        return Decision::Ignored { reason: format!("{id} is not an instance of a configured NAT group") };
    };
    match world.member(name, id) {
        None if world.members.get(name).is_some_and(Option::is_some) => {
            Decision::Stale { reason: format!("{name} does not hold {id}") }
        }
        Some(member) if member.healthy && !proof && fresh => Decision::NotYetVisible {
            reason: format!("{name} does not show {id} Unhealthy yet (the NAT marks itself as it reports)"),
        },
        Some(member) if member.healthy && !proof => {
            Decision::Stale { reason: format!("{name} holds {id} healthy: a report alone moves nothing") }
        }
        _ => hand_over(config, world, Some(name), id),
    }
}

/// An operator's drain or undrain of `name`: planned in a world where the group's mark is as asked.
/// The zones: the group's own, and every zone with a table routed through one of its instances (a
/// zone failed over onto the drained NAT moves on to another sibling at once, as on a hand-over).
pub(super) fn drain(config: &Config, world: &World, name: &str, drained: bool) -> Decision {
    if config.group(name).is_none() {
        return Decision::Ignored { reason: format!("{name} is not a configured group") };
    }
    let mut world = world.clone();
    match (drained, world.drained.contains_key(name)) {
        (true, false) => {
            world.drained.insert(name.to_owned(), DrainMark { since: String::new(), reason: "as asked".to_owned() });
        }
        (false, true) => {
            world.drained.remove(name);
        }
        _ => {}
    }
    let mut zones: Vec<&str> = vec![name];
    let ids: Vec<&str> = world
        .members
        .get(name)
        .and_then(Option::as_deref)
        .unwrap_or_default()
        .iter()
        .map(|m| m.instance_id.as_str())
        .collect();
    for id in ids {
        for table in tables_targeting(config, &world, id) {
            if let Some(zone) = config.group_of_table(&table.id).filter(|z| !zones.contains(z)) {
                zones.push(zone);
            }
        }
    }
    match Ctx::new(config, &world, None) {
        Ok(ctx) => Decision::Plan(ctx.plan(zones.into_iter(), None)),
        Err(decision) => decision,
    }
}

pub(super) fn everything(config: &Config, world: &World) -> Decision {
    match Ctx::new(config, world, None) {
        Ok(ctx) => Decision::Plan(ctx.plan(config.groups.keys().map(String::as_str), None)),
        Err(decision) => decision,
    }
}

#[cfg(test)]
mod tests {
    use crate::decide::fixtures::*;
    use crate::decide::*;
    use crate::model::*;

    #[test]
    fn a_nat_that_reported_itself_unhealthy_hands_its_zone_over_while_it_still_runs() {
        let mut w = healthy();
        set_member(&mut w, "nat-a", vec![unhealthy(A1)]);
        let p = plan(decide(&config(true), warned(A1, Some("nat-a"), false), &w));
        let zone = p.zone("nat-a").unwrap();
        assert!(matches!(&zone.follows, Follows::Sibling { group, .. } if group == "nat-b"), "{zone:?}");
        assert_eq!(kinds(&zone.routes), ["replace_route rtb-000000a1", "replace_route rtb-000000a2"]);

        // The group holds a newer proven instance: the zone goes to it, with its own EIP.
        let mut w = refreshed();
        set_member(&mut w, "nat-a", vec![unhealthy(A1), member(A2, "InService")]);
        let p = plan(decide(&config(true), warned(A1, Some("nat-a"), false), &w));
        assert_eq!(p.zones[0].follows, Follows::Own { instance_id: A2.into(), network_interface_id: eni(A2) });

        // Failover off and no newer instance: the zone stays where it is.
        let mut w = healthy();
        set_member(&mut w, "nat-a", vec![unhealthy(A1)]);
        let p = plan(decide(&config(false), warned(A1, Some("nat-a"), false), &w));
        assert!(p.routes().is_empty() && p.identity().is_empty());
    }

    #[test]
    fn a_report_alone_moves_nothing_without_the_group_s_word() {
        // Forged, crossed or early: the group holds the instance healthy, or does not hold it.
        let d = decide(&config(true), warned(A1, Some("nat-a"), false), &healthy()).unwrap();
        assert!(matches!(&d, Decision::Stale { reason } if reason.contains("healthy")), "{d:?}");
        // A young report: the group may not show the NAT's own mark yet (observed again, within the deadline).
        let young = Subject::Warned { group: Some("nat-a"), instance: A1, proof: false, fresh: true };
        assert!(matches!(decide(&config(true), young, &healthy()), Ok(Decision::NotYetVisible { .. })));
        let d = decide(&config(true), warned("i-00000000000000dd", Some("nat-a"), false), &healthy()).unwrap();
        assert!(matches!(&d, Decision::Stale { reason } if reason.contains("does not hold")), "{d:?}");
        // EC2's Spot warning is proof: the zone moves while the group still holds it healthy.
        let p = plan(decide(&config(true), warned(A1, None, true), &healthy()));
        assert!(matches!(&p.zone("nat-a").unwrap().follows, Follows::Sibling { .. }));
        // ... and an instance of no configured group is not ours.
        let mut w = healthy();
        w.instances.push(InstanceView {
            group: Some("web".into()),
            ..instance("i-00000000000000ee", 'a', InstanceState::Running, 1, true)
        });
        let d = decide(&config(true), warned("i-00000000000000ee", None, true), &w).unwrap();
        assert!(matches!(d, Decision::Ignored { .. }), "{d:?}");
    }

    #[test]
    fn a_warned_sibling_is_never_chosen_and_a_warning_for_a_gone_instance_is_a_state_change() {
        // b was warned (the hook marked it Unhealthy): a's NAT leaves, its zone goes to c.
        let mut w = healthy();
        set_member(&mut w, "nat-a", vec![member(A1, "Terminating:Wait")]);
        set_member(&mut w, "nat-b", vec![unhealthy(B1)]);
        let p = plan(decide(&config(true), leaving(A1, true), &w));
        assert!(matches!(&p.zone("nat-a").unwrap().follows, Follows::Sibling { group, .. } if group == "nat-c"));
        // The warned instance itself is never the target of its own zone's hand-over.
        let p = plan(decide(&config(true), warned(B1, None, true), &healthy()));
        assert!(matches!(&p.zone("nat-b").unwrap().follows, Follows::Sibling { instance_id, .. } if instance_id != B1));
        // Already shutting down: the state-change path (the same hand-over).
        let mut w = healthy();
        set_state(&mut w, A1, "shutting-down");
        let p = plan(decide(&config(true), warned(A1, None, true), &w));
        assert!(matches!(&p.zone("nat-a").unwrap().follows, Follows::Sibling { .. }));
        // A repeated warning after the hand-over: nothing left to change.
        let mut w = healthy();
        set_member(&mut w, "nat-a", vec![unhealthy(A1)]);
        set_route(&mut w, "rtb-000000a1", route(B1));
        set_route(&mut w, "rtb-000000a2", route(B1));
        let p = plan(decide(&config(true), warned(A1, None, true), &w));
        assert!(p.routes().is_empty() && p.identity().is_empty(), "{p:?}");
    }

    #[test]
    fn leaving_with_a_newer_instance_in_service_cuts_over_to_it() {
        // An instance refresh whose launch event was lost: the old one's terminate action heals it.
        let mut w = refreshed();
        set_member(&mut w, "nat-a", vec![member(A1, "Terminating:Wait"), member(A2, "InService")]);
        let p = plan(decide(&config(true), leaving(A1, true), &w));
        assert_eq!(p.zones.len(), 1);
        assert_eq!(p.zones[0].follows, Follows::Own { instance_id: A2.into(), network_interface_id: eni(A2) });
        assert_eq!(kinds(&p.identity()).len(), 2);
        assert_eq!(kinds(&p.routes()), ["replace_route rtb-000000a1", "replace_route rtb-000000a2"]);
    }

    #[test]
    fn a_terminate_action_for_an_instance_its_group_holds_in_service_moves_nothing() {
        // A replayed or forged terminate action: the group never began terminating A1.
        let w = refreshed();
        let d = decide(&config(true), leaving(A1, true), &w).unwrap();
        assert!(matches!(&d, Decision::Stale { reason } if reason.contains("InService")), "{d:?}");
    }

    #[test]
    fn tables_failed_over_onto_a_leaving_nat_move_on_with_it() {
        // Zone a failed over onto b; now b's NAT leaves too: a's tables and b's go to c.
        let mut w = healthy();
        set_member(&mut w, "nat-a", vec![]);
        set_route(&mut w, "rtb-000000a1", route(B1));
        set_route(&mut w, "rtb-000000a2", route(B1));
        set_state(&mut w, B1, "shutting-down");
        let p = plan(decide(&config(true), Subject::Leaving { group: None, instance: B1, by_group: false }, &w));
        for zone in ["nat-a", "nat-b"] {
            assert!(
                matches!(&p.zone(zone).unwrap().follows, Follows::Sibling { group, .. } if group == "nat-c"),
                "{zone}"
            );
        }
        assert_eq!(
            kinds(&p.routes()),
            ["replace_route rtb-000000b1", "replace_route rtb-000000a1", "replace_route rtb-000000a2"]
        );
    }

    #[test]
    fn a_state_change_of_an_instance_nothing_targets_is_ignored_and_a_running_one_is_stale() {
        let mut w = healthy();
        w.instances.push(InstanceView {
            group: None,
            ..instance("i-000000000000beef", 'a', InstanceState::Other("stopped".into()), 1, true)
        });
        assert!(matches!(
            decide(
                &config(true),
                Subject::Leaving { group: None, instance: "i-000000000000beef", by_group: false },
                &w
            ),
            Ok(Decision::Ignored { .. })
        ));
        // A late "stopping" for an instance that runs again moves nothing.
        assert!(matches!(
            decide(&config(true), Subject::Leaving { group: None, instance: A1, by_group: false }, &healthy()),
            Ok(Decision::Stale { .. })
        ));
        assert_eq!(tables_targeting(&config(true), &healthy(), A1).count(), 2);
        assert_eq!(tables_targeting(&config(true), &healthy(), "i-000000000000beef").count(), 0);
    }

    #[test]
    fn the_schedule_leaves_a_launch_in_progress_alone() {
        // A2 is still proving itself: the zone stays on A1.
        let mut w = refreshed();
        set_member(&mut w, "nat-a", vec![member(A1, "InService"), member(A2, "Pending:Wait")]);
        let p = plan(decide(&config(true), Subject::Everything, &w));
        assert!(p.routes().is_empty() && p.identity().is_empty());
        // Two in service (the refresh overlap): the newer one owns the zone.
        let p = plan(decide(&config(true), Subject::Everything, &refreshed()));
        assert_eq!(
            p.zone("nat-a").unwrap().follows,
            Follows::Own { instance_id: A2.into(), network_interface_id: eni(A2) }
        );
    }

    #[test]
    fn the_terminate_action_waits_only_for_a_retry_that_can_help() {
        let cases = [
            (Handover::Done, false, true),
            (Handover::Failed { retryable: false }, false, true),
            (Handover::Failed { retryable: true }, false, false),
            (Handover::Done, true, false),
            (Handover::Failed { retryable: false }, true, false),
        ];
        for (handover, dry_run, want) in cases {
            assert_eq!(complete_terminate(handover, dry_run), want, "{handover:?} dry_run={dry_run}");
        }
    }

    #[test]
    fn a_drain_moves_the_zone_s_tables_to_a_sibling_and_never_its_eip() {
        let p = plan(decide(&config(true), drain_subject("nat-a", true), &healthy()));
        assert_eq!(p.zones.len(), 1, "{p:?}");
        assert!(follows_sibling(&p, "nat-a", "nat-b"), "{p:?}");
        assert_eq!(kinds(&p.routes()), ["replace_route rtb-000000a1", "replace_route rtb-000000a2"]);
        assert!(p.identity().is_empty(), "the sibling's identity is right, and the EIP never crosses zones");
        // Planned on the unmarked world (dry run, and before the tag) exactly as the schedule plans it after.
        let mut marked = healthy();
        drain(&mut marked, "nat-a");
        assert_eq!(decide(&config(true), Subject::Everything, &marked).map(|d| plan(Ok(d)).routes()), Ok(p.routes()));
        // Done: a repeat plans nothing.
        let p = plan(decide(&config(true), drain_subject("nat-a", true), &drained_on_b()));
        assert!(p.routes().is_empty() && p.identity().is_empty(), "{p:?}");
    }

    #[test]
    fn a_drained_zone_stays_on_its_sibling_through_every_trigger() {
        let w = drained_on_b();
        // The schedule.
        let p = plan(decide(&config(true), Subject::Everything, &w));
        assert!(follows_sibling(&p, "nat-a", "nat-b") && p.routes().is_empty() && p.identity().is_empty(), "{p:?}");
        // The drained group's new NAT proves itself and goes in service: its launch takes nothing back,
        // and neither does the schedule after it.
        let mut replaced = w.clone();
        replaced.instances.push(instance(A2, 'a', InstanceState::Running, 3_000, true));
        set_member(&mut replaced, "nat-a", vec![member(A2, "InService")]);
        set_state(&mut replaced, A1, "terminated");
        for subject in [launched_subject(A2, true), launched_subject(A2, false), Subject::Everything] {
            let p = plan(decide(&config(true), subject, &replaced));
            assert!(follows_sibling(&p, "nat-a", "nat-b"), "{subject:?}: {p:?}");
            assert!(p.routes().is_empty() && p.identity().is_empty(), "{subject:?}: {p:?}");
        }
        // A launch while the drained zone's tables are still on its own NAT moves them to the sibling.
        let mut not_moved = replaced.clone();
        set_route(&mut not_moved, "rtb-000000a1", route(A2));
        let p = plan(decide(&config(true), launched_subject(A2, true), &not_moved));
        assert_eq!(kinds(&p.routes()), ["replace_route rtb-000000a1"]);
        // The drained NAT stops (the operator's maintenance): nothing routes through it, nothing moves.
        let mut stopped = w.clone();
        set_state(&mut stopped, A1, "stopping");
        let p = plan(decide(&config(true), Subject::Leaving { group: None, instance: A1, by_group: false }, &stopped));
        assert!(p.routes().is_empty() && p.identity().is_empty(), "{p:?}");
        // The sibling carrying it leaves: the drained zone moves on to c, never back to its own NAT.
        let mut sibling_leaves = w.clone();
        set_member(&mut sibling_leaves, "nat-b", vec![member(B1, "Terminating:Wait")]);
        let p = plan(decide(
            &config(true),
            Subject::Leaving { group: Some("nat-b"), instance: B1, by_group: true },
            &sibling_leaves,
        ));
        assert!(follows_sibling(&p, "nat-a", "nat-c"), "{p:?}");
        assert!(kinds(&p.routes()).contains(&"replace_route rtb-000000a1".to_owned()));
    }

    #[test]
    fn an_undrained_zone_comes_back_to_its_own_proven_nat_identity_first() {
        // Drained while its NAT was replaced: A2 in service, the EIP still on the dead A1's interface.
        let mut w = drained_on_b();
        w.instances.push(instance(A2, 'a', InstanceState::Running, 3_000, true));
        set_member(&mut w, "nat-a", vec![member(A2, "InService")]);
        set_state(&mut w, A1, "terminated");
        let p = plan(decide(&config(true), drain_subject("nat-a", false), &w));
        assert_eq!(
            p.zone("nat-a").unwrap().follows,
            Follows::Own { instance_id: A2.into(), network_interface_id: eni(A2) }
        );
        assert_eq!(
            kinds(&p.identity()),
            ["associate_address eipalloc-0000000a", "disable_source_dest_check eni-000000000000000a2"]
        );
        assert_eq!(kinds(&p.routes()), ["replace_route rtb-000000a1", "replace_route rtb-000000a2"]);
        // Its own NAT is not proven yet: the zone stays on the sibling; the launch takes it back later.
        set_member(&mut w, "nat-a", vec![member(A2, "Pending:Wait")]);
        let p = plan(decide(&config(true), drain_subject("nat-a", false), &w));
        assert!(follows_sibling(&p, "nat-a", "nat-b") && p.routes().is_empty() && p.identity().is_empty(), "{p:?}");
        // Never drained, healthy: nothing to change.
        let p = plan(decide(&config(true), drain_subject("nat-a", false), &healthy()));
        assert!(p.routes().is_empty() && p.identity().is_empty(), "{p:?}");
        // A group that is not configured is no zone of ours.
        assert!(matches!(
            decide(&config(true), drain_subject("nat-z", true), &healthy()),
            Ok(Decision::Ignored { .. })
        ));
    }
}
