//! The planner: observed state in, decision out. Pure (no I/O, no clock, no SDK types), so every
//! rule that keeps a stale event from stealing routes is a plain table-driven test.

use crate::config::GroupConfig;
use crate::model::{Action, InstanceView, Observation};

/// Which instance the caller wants the group pointed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    /// The instance named by a launch event. It must be the newest live instance the group holds.
    Launched(&'a str),
    /// The schedule or an operator: the newest instance the group holds InService.
    InService,
    /// Just abandoned by the hook after some moves reached it: the newest instance the group holds
    /// InService other than this one, which the group may not show as leaving yet.
    Abandoned(&'a str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Point the group's EIP and routes at this instance. No actions: already right.
    Converge { instance_id: String, network_interface_id: String, actions: Vec<Action> },
    /// The event's instance is not, or no longer, the one the group keeps: nothing may move.
    Stale { reason: String },
    /// The group holds no InService instance to point at: nothing may move.
    NoInstance { reason: String },
    /// EC2 has not caught up with Auto Scaling yet (eventual consistency): observe again.
    NotYetVisible { reason: String },
}

/// A state that retrying cannot fix: the configuration and the account disagree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("Auto Scaling group {group} does not exist")]
    GroupMissing { group: String },
    #[error("group {group}: Elastic IP {allocation_id} does not exist")]
    AddressMissing { group: String, allocation_id: String },
    #[error("group {group}: route tables {} do not exist", .route_table_ids.join(", "))]
    RouteTablesMissing { group: String, route_table_ids: Vec<String> },
    #[error("group {group}: instance {instance_id} is in {instance_zone} but the group is configured for {group_zone}")]
    ZoneMismatch { group: String, instance_id: String, instance_zone: String, group_zone: String },
}

/// Decides what to do for one group.
pub fn decide(
    group_name: &str,
    group: &GroupConfig,
    destination: &str,
    subject: Subject<'_>,
    observed: &Observation,
) -> Result<Decision, Refusal> {
    let Some(members) = observed.members.as_deref() else {
        return Err(Refusal::GroupMissing { group: group_name.to_owned() });
    };

    // The owner is the newest live instance among those the group holds. Held instances that EC2
    // does not show yet make the answer unknowable for now.
    let abandoned = match subject {
        Subject::Abandoned(id) => Some(id),
        Subject::Launched(_) | Subject::InService => None,
    };
    let mut owner: Option<&InstanceView> = None;
    let mut unseen: Vec<&str> = Vec::new();
    for member in members.iter().filter(|m| m.is_held() && abandoned != Some(m.instance_id.as_str())) {
        match observed.instance(&member.instance_id) {
            Some(instance) if instance.state.is_live() => {
                if owner.is_none_or(|o| (instance.launch_time_ms, &instance.id) > (o.launch_time_ms, &o.id)) {
                    owner = Some(instance);
                }
            }
            Some(_) => {} // Auto Scaling lags behind EC2: the instance is already gone.
            None => unseen.push(&member.instance_id),
        }
    }

    let instance = match subject {
        Subject::Launched(id) => {
            let member = observed.member(id);
            let instance = observed.instance(id);
            match (member, instance) {
                (Some(m), _) if !m.is_held() => {
                    return Ok(Decision::Stale { reason: format!("{group_name} holds {id} as {}", m.lifecycle_state) });
                }
                (None, Some(i)) => {
                    return Ok(Decision::Stale {
                        reason: format!("{group_name} no longer lists {id} (it is {})", i.state.name()),
                    });
                }
                (None, None) => {
                    return Ok(Decision::Stale {
                        reason: format!("{group_name} does not list {id} and EC2 does not know it"),
                    });
                }
                (Some(_), None) => {
                    return Ok(Decision::NotYetVisible { reason: format!("{id} is not visible in EC2 yet") });
                }
                (Some(_), Some(i)) if !i.state.is_live() => {
                    return Ok(Decision::Stale { reason: format!("{id} is {}", i.state.name()) });
                }
                (Some(_), Some(i)) => {
                    if let Some(other) = unseen.first() {
                        return Ok(Decision::NotYetVisible {
                            reason: format!("{group_name} also holds {other}, which EC2 does not show yet"),
                        });
                    }
                    match owner {
                        Some(o) if o.id != i.id => {
                            return Ok(Decision::Stale { reason: format!("superseded by {}, launched later", o.id) });
                        }
                        _ => i,
                    }
                }
            }
        }
        Subject::InService | Subject::Abandoned(_) => {
            if let Some(other) = unseen.first() {
                return Ok(Decision::NotYetVisible {
                    reason: format!("{group_name} holds {other}, which EC2 does not show yet"),
                });
            }
            match owner {
                None => {
                    return Ok(Decision::NoInstance {
                        reason: format!("{group_name} holds no pending or running instance"),
                    });
                }
                Some(o) => match observed.member(&o.id) {
                    Some(m) if m.is_in_service() => o,
                    Some(m) => {
                        return Ok(Decision::NoInstance {
                            reason: format!(
                                "{} is still {}: its launch event moves the routes",
                                o.id, m.lifecycle_state
                            ),
                        });
                    }
                    None => {
                        return Ok(Decision::NoInstance {
                            reason: format!("{group_name} lists no InService instance"),
                        });
                    }
                },
            }
        }
    };

    if instance.availability_zone != group.availability_zone {
        return Err(Refusal::ZoneMismatch {
            group: group_name.to_owned(),
            instance_id: instance.id.clone(),
            instance_zone: instance.availability_zone.clone(),
            group_zone: group.availability_zone.clone(),
        });
    }
    let Some(eni) = &instance.primary_eni else {
        return Ok(Decision::NotYetVisible { reason: format!("{} has no network interface yet", instance.id) });
    };
    let Some(address) = &observed.address else {
        return Err(Refusal::AddressMissing {
            group: group_name.to_owned(),
            allocation_id: group.eip_allocation_id.clone(),
        });
    };
    let missing: Vec<String> = group
        .route_table_ids
        .iter()
        .filter(|id| !observed.route_tables.iter().any(|t| &t.id == *id))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(Refusal::RouteTablesMissing { group: group_name.to_owned(), route_table_ids: missing });
    }

    let mut actions = Vec::new();
    if address.network_interface_id.as_deref() != Some(eni.id.as_str()) {
        actions.push(Action::AssociateAddress {
            allocation_id: address.allocation_id.clone(),
            network_interface_id: eni.id.clone(),
            private_ip_address: eni.private_ip.clone(),
            previous_network_interface_id: address.network_interface_id.clone(),
        });
    }
    if eni.source_dest_check {
        actions.push(Action::DisableSourceDestCheck { network_interface_id: eni.id.clone() });
    }
    for table_id in &group.route_table_ids {
        let Some(table) = observed.route_tables.iter().find(|t| &t.id == table_id) else { continue };
        match &table.route {
            None => actions.push(Action::CreateRoute {
                route_table_id: table.id.clone(),
                destination_cidr_block: destination.to_owned(),
                network_interface_id: eni.id.clone(),
            }),
            Some(route) if route.active && route.network_interface_id.as_deref() == Some(eni.id.as_str()) => {}
            Some(route) => actions.push(Action::ReplaceRoute {
                route_table_id: table.id.clone(),
                destination_cidr_block: destination.to_owned(),
                network_interface_id: eni.id.clone(),
                previous_target: if route.active {
                    route.target.to_string()
                } else {
                    format!("{} (blackhole)", route.target)
                },
            }),
        }
    }
    Ok(Decision::Converge { instance_id: instance.id.clone(), network_interface_id: eni.id.clone(), actions })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    const NEW: &str = "i-00000000000000002";
    const OLD: &str = "i-00000000000000001";
    const NEW_ENI: &str = "eni-00000000000000002";
    const OLD_ENI: &str = "eni-00000000000000001";

    fn group() -> GroupConfig {
        GroupConfig {
            availability_zone: "us-east-1a".into(),
            eip_allocation_id: "eipalloc-11111111".into(),
            route_table_ids: vec!["rtb-11111111".into(), "rtb-22222222".into()],
        }
    }

    fn instance(id: &str, eni: &str, state: InstanceState, launched: i64, sdc: bool) -> InstanceView {
        InstanceView {
            id: id.into(),
            state,
            availability_zone: "us-east-1a".into(),
            launch_time_ms: launched,
            primary_eni: Some(Eni { id: eni.into(), private_ip: Some("10.0.0.10".into()), source_dest_check: sdc }),
        }
    }

    fn member(id: &str, state: &str) -> AsgMember {
        AsgMember { instance_id: id.into(), lifecycle_state: state.into() }
    }

    fn route(eni: &str, active: bool) -> Option<RouteView> {
        Some(RouteView {
            network_interface_id: Some(eni.into()),
            target: RouteTarget::NetworkInterface(eni.into()),
            active,
        })
    }

    fn tables(routes: [Option<RouteView>; 2]) -> Vec<RouteTableView> {
        let [a, b] = routes;
        vec![
            RouteTableView { id: "rtb-11111111".into(), route: a },
            RouteTableView { id: "rtb-22222222".into(), route: b },
        ]
    }

    /// The world right after a replacement: the new instance pending, EIP and routes on the old ENI.
    fn replaced() -> Observation {
        Observation {
            instances: vec![instance(NEW, NEW_ENI, InstanceState::Pending, 2_000, true)],
            members: Some(vec![member(NEW, "Pending:Wait")]),
            address: Some(AddressView {
                allocation_id: "eipalloc-11111111".into(),
                public_ip: None,
                network_interface_id: Some(OLD_ENI.into()),
            }),
            route_tables: tables([route(OLD_ENI, true), route(OLD_ENI, true)]),
        }
    }

    /// The same world once the hook has done its work.
    fn converged() -> Observation {
        let mut o = replaced();
        o.instances = vec![instance(NEW, NEW_ENI, InstanceState::Running, 2_000, false)];
        o.members = Some(vec![member(NEW, "InService")]);
        o.address = Some(AddressView {
            allocation_id: "eipalloc-11111111".into(),
            public_ip: None,
            network_interface_id: Some(NEW_ENI.into()),
        });
        o.route_tables = tables([route(NEW_ENI, true), route(NEW_ENI, true)]);
        o
    }

    fn plan(subject: Subject<'_>, o: &Observation) -> Result<Decision, Refusal> {
        decide("nat-a", &group(), "0.0.0.0/0", subject, o)
    }

    fn kinds(d: &Decision) -> Vec<&'static str> {
        match d {
            Decision::Converge { actions, .. } => actions.iter().map(Action::kind).collect(),
            other => panic!("expected a plan, got {other:?}"),
        }
    }

    #[test]
    fn converge_plans_only_what_differs() {
        let partly = {
            let mut o = converged();
            o.route_tables = tables([route(NEW_ENI, true), route(OLD_ENI, true)]);
            o
        };
        let route_missing = {
            let mut o = converged();
            o.route_tables = tables([route(NEW_ENI, true), None]);
            o
        };
        let blackholed = {
            let mut o = converged();
            o.route_tables = tables([route(NEW_ENI, false), route(NEW_ENI, true)]);
            o
        };
        let to_gateway = {
            let mut o = converged();
            o.route_tables[0].route = Some(RouteView {
                network_interface_id: None,
                target: RouteTarget::Other("nat-0123456789abcdef0".into()),
                active: true,
            });
            o
        };
        let sdc_on = {
            let mut o = converged();
            o.instances[0].primary_eni.as_mut().unwrap().source_dest_check = true;
            o
        };
        let eip_unassociated = {
            let mut o = converged();
            o.address.as_mut().unwrap().network_interface_id = None;
            o
        };
        let cases: [(&str, Observation, Vec<&str>); 8] = [
            ("already right", converged(), vec![]),
            (
                "fresh replacement",
                replaced(),
                vec!["associate_address", "disable_source_dest_check", "replace_route", "replace_route"],
            ),
            ("partly right", partly, vec!["replace_route"]),
            ("route missing", route_missing, vec!["create_route"]),
            ("route blackholed on the right ENI", blackholed, vec!["replace_route"]),
            ("route to a gateway", to_gateway, vec!["replace_route"]),
            ("source/dest check back on", sdc_on, vec!["disable_source_dest_check"]),
            ("EIP not associated", eip_unassociated, vec!["associate_address"]),
        ];
        for (name, observed, want) in cases {
            let d = plan(Subject::Launched(NEW), &observed).unwrap();
            assert_eq!(kinds(&d), want, "{name}");
            if let Decision::Converge { instance_id, network_interface_id, .. } = &d {
                assert_eq!((instance_id.as_str(), network_interface_id.as_str()), (NEW, NEW_ENI), "{name}");
            }
        }
    }

    #[test]
    fn actions_carry_the_targets() {
        let Decision::Converge { actions, .. } = plan(Subject::Launched(NEW), &replaced()).unwrap() else { panic!() };
        assert_eq!(
            actions[0],
            Action::AssociateAddress {
                allocation_id: "eipalloc-11111111".into(),
                network_interface_id: NEW_ENI.into(),
                private_ip_address: Some("10.0.0.10".into()),
                previous_network_interface_id: Some(OLD_ENI.into()),
            }
        );
        assert_eq!(
            actions[2],
            Action::ReplaceRoute {
                route_table_id: "rtb-11111111".into(),
                destination_cidr_block: "0.0.0.0/0".into(),
                network_interface_id: NEW_ENI.into(),
                previous_target: OLD_ENI.into(),
            }
        );
    }

    #[test]
    fn unrelated_routes_and_tables_are_not_touched() {
        // Only the configured destination is observed per table; the configured tables are the
        // only ones planned, whatever else the observation holds.
        let mut o = converged();
        o.route_tables.push(RouteTableView { id: "rtb-99999999".into(), route: route(OLD_ENI, true) });
        assert_eq!(kinds(&plan(Subject::Launched(NEW), &o).unwrap()), Vec::<&str>::new());
    }

    #[test]
    fn stale_events_move_nothing() {
        let terminated = {
            let mut o = converged();
            o.instances.push(instance(OLD, OLD_ENI, InstanceState::Other("terminated".into()), 1_000, false));
            o
        };
        let shutting_down_still_listed = {
            let mut o = converged();
            o.instances = vec![instance(OLD, OLD_ENI, InstanceState::Other("shutting-down".into()), 1_000, false)];
            o.members = Some(vec![member(OLD, "InService")]);
            o
        };
        let terminating = {
            let mut o = converged();
            o.instances.push(instance(OLD, OLD_ENI, InstanceState::Running, 1_000, false));
            o.members = Some(vec![member(NEW, "InService"), member(OLD, "Terminating:Wait")]);
            o
        };
        let standby = {
            let mut o = converged();
            o.instances = vec![instance(OLD, OLD_ENI, InstanceState::Running, 1_000, false)];
            o.members = Some(vec![member(OLD, "Standby")]);
            o
        };
        // An instance refresh launches before it terminates: both held, the old one's late event
        // must not take the routes back.
        let superseded = {
            let mut o = converged();
            o.instances.push(instance(OLD, OLD_ENI, InstanceState::Running, 1_000, false));
            o.members = Some(vec![member(OLD, "InService"), member(NEW, "Pending:Wait")]);
            o
        };
        let forgotten = converged();
        let cases = [
            ("terminated and no longer listed", terminated, "no longer lists"),
            ("shutting down, still listed", shutting_down_still_listed, "is shutting-down"),
            ("terminating", terminating, "as Terminating:Wait"),
            ("standby", standby, "as Standby"),
            ("superseded by a newer instance", superseded, "superseded by i-00000000000000002"),
            ("long gone", forgotten, "does not list"),
        ];
        for (name, observed, want) in cases {
            match plan(Subject::Launched(OLD), &observed).unwrap() {
                Decision::Stale { reason } => assert!(reason.contains(want), "{name}: {reason}"),
                other => panic!("{name}: expected stale, got {other:?}"),
            }
        }
    }

    #[test]
    fn the_newer_instance_wins_a_refresh_overlap() {
        let mut o = replaced();
        o.instances.push(instance(OLD, OLD_ENI, InstanceState::Running, 1_000, false));
        o.members = Some(vec![member(OLD, "InService"), member(NEW, "Pending:Wait")]);
        assert_eq!(kinds(&plan(Subject::Launched(NEW), &o).unwrap()).len(), 4);
    }

    #[test]
    fn eventual_consistency_asks_to_look_again() {
        let not_visible = {
            let mut o = replaced();
            o.instances.clear();
            o
        };
        let no_eni = {
            let mut o = replaced();
            o.instances[0].primary_eni = None;
            o
        };
        let other_unseen = {
            let mut o = replaced();
            o.members = Some(vec![member(NEW, "Pending:Wait"), member("i-00000000000000003", "Pending")]);
            o
        };
        for (name, observed) in [("instance", not_visible), ("eni", no_eni), ("other member", other_unseen)] {
            assert!(matches!(plan(Subject::Launched(NEW), &observed), Ok(Decision::NotYetVisible { .. })), "{name}");
        }
    }

    #[test]
    fn misconfiguration_is_refused() {
        let wrong_zone = {
            let mut o = replaced();
            o.instances[0].availability_zone = "us-east-1b".into();
            o
        };
        let no_group = Observation { members: None, ..replaced() };
        let no_address = Observation { address: None, ..replaced() };
        let no_table = {
            let mut o = replaced();
            o.route_tables.truncate(1);
            o
        };
        assert!(matches!(plan(Subject::Launched(NEW), &wrong_zone), Err(Refusal::ZoneMismatch { .. })));
        assert!(matches!(plan(Subject::Launched(NEW), &no_group), Err(Refusal::GroupMissing { .. })));
        assert!(matches!(plan(Subject::Launched(NEW), &no_address), Err(Refusal::AddressMissing { .. })));
        assert_eq!(
            plan(Subject::Launched(NEW), &no_table),
            Err(Refusal::RouteTablesMissing { group: "nat-a".into(), route_table_ids: vec!["rtb-22222222".into()] })
        );
        // A stale event is answered stale even when the zone is wrong: it never errors.
        let mut stale_wrong_zone = converged();
        stale_wrong_zone.instances = vec![instance(OLD, OLD_ENI, InstanceState::Other("terminated".into()), 1, false)];
        stale_wrong_zone.instances[0].availability_zone = "us-east-1b".into();
        assert!(matches!(plan(Subject::Launched(OLD), &stale_wrong_zone), Ok(Decision::Stale { .. })));
    }

    #[test]
    fn reconcile_targets_the_newest_in_service_instance() {
        let mut healed = converged();
        healed.route_tables = tables([route(OLD_ENI, true), route(NEW_ENI, true)]);
        assert_eq!(kinds(&plan(Subject::InService, &healed).unwrap()), vec!["replace_route"]);

        let mut two_in_service = converged();
        two_in_service.instances.push(instance(OLD, OLD_ENI, InstanceState::Running, 1_000, false));
        two_in_service.members = Some(vec![member(OLD, "InService"), member(NEW, "InService")]);
        let Decision::Converge { instance_id, .. } = plan(Subject::InService, &two_in_service).unwrap() else {
            panic!()
        };
        assert_eq!(instance_id, NEW);
    }

    #[test]
    fn an_abandoned_instance_hands_the_moves_back_to_the_one_in_service() {
        // An instance refresh: the moves reached NEW, then NEW was abandoned; the group still
        // shows it Pending:Wait.
        let mut half_moved = converged();
        half_moved.instances.push(instance(OLD, OLD_ENI, InstanceState::Running, 1_000, false));
        half_moved.members = Some(vec![member(OLD, "InService"), member(NEW, "Pending:Wait")]);
        let decision = plan(Subject::Abandoned(NEW), &half_moved).unwrap();
        assert_eq!(kinds(&decision), vec!["associate_address", "replace_route", "replace_route"]);
        let Decision::Converge { instance_id, .. } = decision else { panic!() };
        assert_eq!(instance_id, OLD);

        // Nothing else in service (a plain replacement): nothing to hand back to.
        let mut alone = converged();
        alone.members = Some(vec![member(NEW, "Pending:Wait")]);
        assert!(matches!(plan(Subject::Abandoned(NEW), &alone), Ok(Decision::NoInstance { .. })));
    }

    #[test]
    fn reconcile_leaves_a_launch_in_progress_and_an_empty_group_alone() {
        let launching = {
            let mut o = replaced();
            o.instances.push(instance(OLD, OLD_ENI, InstanceState::Running, 1_000, false));
            o.members = Some(vec![member(OLD, "InService"), member(NEW, "Pending:Wait")]);
            o
        };
        let empty = Observation { instances: vec![], members: Some(vec![]), ..converged() };
        for (name, observed) in [("launching", launching), ("empty", empty)] {
            assert!(matches!(plan(Subject::InService, &observed), Ok(Decision::NoInstance { .. })), "{name}");
        }
    }
}
