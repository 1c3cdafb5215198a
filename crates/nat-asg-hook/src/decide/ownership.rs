//! Who owns a zone (step 1: the newest proven, healthy, live instance its group holds, other than
//! one that is leaving) and whether an event's instance may move anything (step 2).

use crate::config::Config;
use crate::decide::{Decision, Refusal};
use crate::model::{InstanceView, RouteTableView, RouteTarget, World};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner<'w> {
    Instance(&'w InstanceView),
    /// The group holds no proven, healthy, live instance (other than the leaving one).
    None {
        reason: String,
    },
    /// The group holds a proven instance EC2 does not show yet: the answer is unknowable for now.
    Unseen {
        reason: String,
    },
}

/// The newest instance the group holds InService (it proved itself), healthy, that EC2 shows live,
/// other than `leaving`. Err when the group does not exist. A group an operator drained has none:
/// its NAT carries neither its own zone nor a sibling's.
pub fn zone_owner<'w>(world: &'w World, group: &str, leaving: Option<&str>) -> Result<Owner<'w>, Refusal> {
    let members = match world.members.get(group) {
        Some(Some(members)) => members,
        Some(None) => return Err(Refusal::GroupMissing { group: group.to_owned() }),
        None => return Ok(Owner::None { reason: format!("{group} was not observed") }),
    };
    if let Some(mark) = world.drain_mark(group) {
        return Ok(Owner::None { reason: format!("{group} is drained {}", mark.describe()) });
    }
    let mut owner: Option<&InstanceView> = None;
    for member in members.iter().filter(|m| m.is_proven() && Some(m.instance_id.as_str()) != leaving) {
        match world.instance(&member.instance_id) {
            Some(instance) if instance.state.is_live() => {
                if owner.is_none_or(|o| (instance.launch_time_ms, &instance.id) > (o.launch_time_ms, &o.id)) {
                    owner = Some(instance);
                }
            }
            Some(_) => {} // Auto Scaling lags behind EC2: the instance is already going.
            None => {
                return Ok(Owner::Unseen {
                    reason: format!("{group} holds {} in service, which EC2 does not show yet", member.instance_id),
                });
            }
        }
    }
    Ok(match owner {
        Some(instance) => Owner::Instance(instance),
        None => Owner::None { reason: format!("{group} holds no healthy instance in service") },
    })
}

// --- step 2: whether the event's instance may move anything -----------------------------------------

/// A launched instance may take its zone only when it proved itself and is the zone's owner.
pub(super) fn launched_may_move<'w>(
    world: &'w World,
    group: &str,
    id: &str,
    fresh: bool,
) -> Result<&'w InstanceView, Decision> {
    let stale = |reason: String| Err(Decision::Stale { reason });
    let later = |reason: String| Err(Decision::NotYetVisible { reason });
    match (world.member(group, id), world.instance(id)) {
        (None, None) if fresh => later(format!("neither {group} nor EC2 shows {id} yet")),
        (None, None) => stale(format!("{group} does not list {id} and EC2 does not know it")),
        (Some(m), _) if m.is_leaving() => stale(format!("{group} holds {id} as {}", m.lifecycle_state)),
        (None, Some(i)) if fresh && i.state.is_live() => later(format!("{group} does not list {id} yet")),
        (None, Some(i)) => stale(format!("{group} no longer lists {id} (it is {})", i.state.name())),
        (Some(_), None) => later(format!("{id} is not visible in EC2 yet")),
        (Some(_), Some(i)) if !i.state.is_live() => stale(format!("{id} is {}", i.state.name())),
        (Some(m), Some(_)) if !m.healthy => stale(format!("{group} marked {id} unhealthy")),
        (Some(m), Some(_)) if !m.is_proven() && fresh => {
            later(format!("{id} is {} in {group}, not in service yet", m.lifecycle_state))
        }
        (Some(m), Some(_)) if !m.is_proven() => stale(format!("{id} is {} in {group}", m.lifecycle_state)),
        (Some(_), Some(i)) => match zone_owner(world, group, None) {
            Ok(Owner::Instance(o)) if o.id == i.id => Ok(i),
            Ok(Owner::Instance(o)) => stale(format!("superseded by {}, launched later", o.id)),
            Ok(Owner::Unseen { reason }) => later(reason),
            Ok(Owner::None { reason }) => stale(reason),
            Err(refusal) => stale(refusal.to_string()),
        },
    }
}

/// The configured tables whose default route goes to `instance` (by its ENI, or by instance ID).
pub fn tables_targeting<'w>(
    config: &Config,
    world: &'w World,
    instance: &str,
) -> impl Iterator<Item = &'w RouteTableView> {
    let eni = world.instance(instance).and_then(InstanceView::eni_id).map(str::to_owned);
    let configured = config.all_route_table_ids();
    world.route_tables.iter().filter(move |table| {
        configured.contains(&table.id)
            && table.route.as_ref().is_some_and(|r| {
                r.instance_id.as_deref() == Some(instance)
                    || r.target == RouteTarget::Instance(instance.to_owned())
                    || (eni.is_some() && r.network_interface_id == eni)
            })
    })
}

#[cfg(test)]
mod tests {
    use crate::decide::fixtures::*;
    use crate::decide::*;
    use crate::model::*;

    #[test]
    fn launch_never_moves_to_an_instance_that_has_not_proved_itself_or_is_superseded() {
        let pending_wait = {
            let mut w = refreshed();
            set_member(&mut w, "nat-a", vec![member(A1, "InService"), member(A2, "Pending:Wait")]);
            w
        };
        let unhealthy = {
            let mut w = refreshed();
            set_member(
                &mut w,
                "nat-a",
                vec![member(A1, "InService"), AsgMember { healthy: false, ..member(A2, "InService") }],
            );
            w
        };
        let terminating = {
            let mut w = refreshed();
            set_member(&mut w, "nat-a", vec![member(A1, "InService"), member(A2, "Terminating:Wait")]);
            w
        };
        let shutting_down = {
            let mut w = refreshed();
            set_state(&mut w, A2, "shutting-down");
            w
        };
        let cases: [(&str, World, &str, bool, &str); 6] = [
            ("old instance's late event", refreshed(), A1, true, "superseded by i-000000000000000a2"),
            ("not in service, old event", pending_wait, A2, false, "is Pending:Wait"),
            ("marked unhealthy", unhealthy, A2, true, "unhealthy"),
            ("terminating", terminating, A2, true, "as Terminating:Wait"),
            ("shutting down", shutting_down, A2, true, "is shutting-down"),
            ("long gone", healthy(), "i-0000000000000dead", false, "does not list"),
        ];
        for (name, world, id, fresh, want) in cases {
            match decide(&config(true), launched_subject(id, fresh), &world) {
                Ok(Decision::Stale { reason }) => assert!(reason.contains(want), "{name}: {reason}"),
                other => panic!("{name}: expected stale, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_fresh_event_waits_for_eventual_consistency_an_old_one_is_stale() {
        let mut unseen = refreshed();
        unseen.instances.retain(|i| i.id != A2);
        set_member(&mut unseen, "nat-a", vec![member(A1, "InService")]);
        assert!(matches!(
            decide(&config(true), launched_subject(A2, true), &unseen),
            Ok(Decision::NotYetVisible { .. })
        ));
        assert!(matches!(decide(&config(true), launched_subject(A2, false), &unseen), Ok(Decision::Stale { .. })));

        // The group lists it, EC2 does not show it yet: wait, however old the event.
        let mut ec2_lags = refreshed();
        ec2_lags.instances.retain(|i| i.id != A2);
        assert!(matches!(
            decide(&config(true), launched_subject(A2, false), &ec2_lags),
            Ok(Decision::NotYetVisible { .. })
        ));

        // Proceeding (CONTINUE given) counts as proven; Pending:Wait with a fresh event waits.
        let mut proceeding = refreshed();
        set_member(&mut proceeding, "nat-a", vec![member(A1, "InService"), member(A2, "Pending:Proceed")]);
        assert!(matches!(decide(&config(true), launched_subject(A2, false), &proceeding), Ok(Decision::Plan(_))));
        let mut waiting = refreshed();
        set_member(&mut waiting, "nat-a", vec![member(A1, "InService"), member(A2, "Pending:Wait")]);
        assert!(matches!(
            decide(&config(true), launched_subject(A2, true), &waiting),
            Ok(Decision::NotYetVisible { .. })
        ));
    }

    #[test]
    fn a_group_member_ec2_does_not_show_yet_asks_to_look_again() {
        let mut w = refreshed();
        set_member(&mut w, "nat-b", vec![member(B1, "InService"), member("i-00000000000000bb2", "InService")]);
        assert!(matches!(decide(&config(true), Subject::Everything, &w), Ok(Decision::NotYetVisible { .. })));
        // Another zone's lag does not hold up a launch, which concerns its own zone only.
        assert!(matches!(decide(&config(true), launched_subject(A2, true), &w), Ok(Decision::Plan(_))));
    }
}
