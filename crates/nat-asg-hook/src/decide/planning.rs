//! Planning one zone (step 4): onto its own NAT (`follow_own`: identity, then routes) or, with none,
//! onto a healthy sibling's (`fail_over`); `Ctx` holds what the zone planners share.

use std::collections::BTreeMap;

use crate::config::{Config, GroupConfig};
use crate::decide::ownership::{Owner, zone_owner};
use crate::decide::refusals::{check_zone, missing};
use crate::decide::{Decision, Follows, Plan, Refusal, ZonePlan};
use crate::model::{Action, InstanceView, RouteTableView, RouteTarget, RouteView, World};

/// The zone's Elastic IP on the instance's primary ENI, its source/dest check off.
fn identity(group: &GroupConfig, instance: &InstanceView, world: &World) -> Vec<Action> {
    let Some(eni) = &instance.primary_eni else { return Vec::new() };
    let mut actions = Vec::new();
    let on = world.address(&group.eip_allocation_id).and_then(|a| a.network_interface_id.clone());
    if on.as_deref() != Some(eni.id.as_str()) {
        actions.push(Action::AssociateAddress {
            allocation_id: group.eip_allocation_id.clone(),
            network_interface_id: eni.id.clone(),
            private_ip_address: eni.private_ip.clone(),
            previous_network_interface_id: on,
        });
    }
    if eni.source_dest_check {
        actions.push(Action::DisableSourceDestCheck { network_interface_id: eni.id.clone() });
    }
    actions
}

/// Points a table's default route at `eni`, unless it already goes there.
fn route_to(table: &RouteTableView, destination: &str, eni: &str) -> Option<Action> {
    match &table.route {
        None => Some(Action::CreateRoute {
            route_table_id: table.id.clone(),
            destination_cidr_block: destination.to_owned(),
            network_interface_id: eni.to_owned(),
        }),
        Some(route) if route.active && route.network_interface_id.as_deref() == Some(eni) => None,
        Some(route) => Some(Action::ReplaceRoute {
            route_table_id: table.id.clone(),
            destination_cidr_block: destination.to_owned(),
            network_interface_id: eni.to_owned(),
            previous_target: describe(route),
        }),
    }
}

fn describe(route: &RouteView) -> String {
    if route.active { route.target.to_string() } else { format!("{} (blackhole)", route.target) }
}

fn tables<'w>(group: &GroupConfig, world: &'w World) -> impl Iterator<Item = &'w RouteTableView> {
    group.route_table_ids.iter().filter_map(|id| world.table(id))
}

/// The zone follows its own NAT: identity, then every table of the zone.
pub(super) fn follow_own(name: &str, group: &GroupConfig, instance: &InstanceView, ctx: &Ctx<'_>) -> ZonePlan {
    let Some(eni) = instance.eni_id() else {
        return nothing(name, format!("{} has no primary network interface yet", instance.id));
    };
    ZonePlan {
        group: name.to_owned(),
        follows: Follows::Own { instance_id: instance.id.clone(), network_interface_id: eni.to_owned() },
        identity: identity(group, instance, ctx.world),
        routes: tables(group, ctx.world).filter_map(|t| route_to(t, ctx.destination(), eni)).collect(),
    }
}

fn nothing(name: &str, reason: String) -> ZonePlan {
    ZonePlan { group: name.to_owned(), follows: Follows::Nothing { reason }, identity: Vec::new(), routes: Vec::new() }
}

/// The zone has no NAT of its own. With failover on, every table whose default route goes nowhere
/// useful (a blackhole, a dead or leaving NAT, no route) goes to a healthy sibling's NAT; a table on a
/// healthy sibling, or on something that is not a NAT instance (a NAT gateway), is left alone. The
/// Elastic IP never crosses zones: the sibling keeps its own, and its identity is checked first.
fn fail_over(name: &str, group: &GroupConfig, reason: String, ctx: &Ctx<'_>) -> ZonePlan {
    if !ctx.config.failover {
        return nothing(name, format!("{reason}; failover is off"));
    }
    let useful = |route: &RouteView| ctx.useful_target(route).map(str::to_owned);
    // A sibling already carrying some of the zone's tables keeps them all (no needless move);
    // otherwise the first healthy sibling by group name.
    let current = tables(group, ctx.world).filter_map(|t| t.route.as_ref().and_then(useful)).find(|e| !e.is_empty());
    let sibling = current
        .and_then(|eni| ctx.owners.iter().find(|(_, (_, o))| o.eni_id() == Some(eni.as_str())))
        .or_else(|| ctx.owners.iter().find(|(g, _)| g.as_str() != name));
    let Some((sibling_name, (sibling_group, instance))) = sibling else {
        return nothing(name, format!("{reason}; no healthy sibling zone to fail over to"));
    };
    let Some(eni) = instance.eni_id() else {
        return nothing(name, format!("{reason}; sibling {} has no network interface", instance.id));
    };
    let routes: Vec<Action> = tables(group, ctx.world)
        .filter(|t| t.route.as_ref().and_then(useful).is_none())
        .filter_map(|t| route_to(t, ctx.destination(), eni))
        .collect();
    ZonePlan {
        group: name.to_owned(),
        follows: Follows::Sibling {
            group: sibling_name.clone(),
            instance_id: instance.id.clone(),
            network_interface_id: eni.to_owned(),
        },
        identity: if routes.is_empty() { Vec::new() } else { identity(sibling_group, instance, ctx.world) },
        routes,
    }
}

/// What the zone planners share: the configuration, the world, and every zone's owner.
pub(super) struct Ctx<'a> {
    pub(super) config: &'a Config,
    pub(super) world: &'a World,
    /// The zones that have a NAT of their own, by group name, with their configuration.
    pub(super) owners: BTreeMap<String, (&'a GroupConfig, &'a InstanceView)>,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(config: &'a Config, world: &'a World, leaving: Option<&str>) -> Result<Self, Decision> {
        let mut owners = BTreeMap::new();
        for (name, group) in &config.groups {
            match zone_owner(world, name, leaving) {
                Ok(Owner::Instance(instance)) if instance.eni_id().is_some() => {
                    owners.insert(name.clone(), (group, instance));
                }
                Ok(Owner::Unseen { reason }) => return Err(Decision::NotYetVisible { reason }),
                _ => {}
            }
        }
        Ok(Self { config, world, owners })
    }

    fn destination(&self) -> &str {
        &self.config.destination_cidr_block
    }

    /// Where a route usefully goes: a zone owner's ENI, or "" for a target that is not a NAT
    /// instance (a NAT gateway: an operator's choice, left alone). None for a blackhole, a dead or
    /// leaving NAT.
    fn useful_target<'r>(&self, route: &'r RouteView) -> Option<&'r str> {
        if !route.active {
            return None;
        }
        if let RouteTarget::Other(_) = route.target {
            return Some("");
        }
        let eni = route.network_interface_id.as_deref()?;
        self.owners.values().any(|(_, o)| o.eni_id() == Some(eni)).then_some(eni)
    }

    /// One zone: its own NAT if it has one, else failover.
    fn zone(&self, name: &str, group: &GroupConfig, leaving: Option<&str>) -> Result<ZonePlan, Refusal> {
        if let Some(refusal) = missing(name, group, self.world) {
            return Err(refusal);
        }
        match self.owners.get(name) {
            Some((_, instance)) => {
                check_zone(name, group, instance)?;
                Ok(follow_own(name, group, instance, self))
            }
            None => {
                let reason = match zone_owner(self.world, name, leaving) {
                    Ok(Owner::None { reason } | Owner::Unseen { reason }) => reason,
                    Ok(Owner::Instance(i)) => format!("{} has no primary network interface yet", i.id),
                    Err(refusal) => return Err(refusal),
                };
                Ok(fail_over(name, group, reason, self))
            }
        }
    }

    pub(super) fn plan<'n>(&self, zones: impl Iterator<Item = &'n str>, leaving: Option<&str>) -> Plan {
        let mut plan = Plan::default();
        for name in zones {
            let Some(group) = self.config.group(name) else { continue };
            match self.zone(name, group, leaving) {
                Ok(zone) => plan.zones.push(zone),
                Err(refusal) => plan.refused.push(refusal),
            }
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use crate::decide::fixtures::*;
    use crate::decide::*;
    use crate::model::*;

    #[test]
    fn launch_moves_identity_first_then_only_what_differs() {
        let p = plan(decide(&config(true), launched_subject(A2, true), &refreshed()));
        assert_eq!(p.zones.len(), 1);
        assert_eq!(
            kinds(&p.identity()),
            ["associate_address eipalloc-0000000a", "disable_source_dest_check eni-000000000000000a2"]
        );
        assert_eq!(kinds(&p.routes()), ["replace_route rtb-000000a1", "replace_route rtb-000000a2"]);
        assert_eq!(p.zones[0].follows, Follows::Own { instance_id: A2.into(), network_interface_id: eni(A2) });

        // Done: a repeat plans nothing.
        let mut done = refreshed();
        done.addresses[0].network_interface_id = Some(eni(A2));
        done.instances[3].primary_eni.as_mut().unwrap().source_dest_check = false;
        set_route(&mut done, "rtb-000000a1", route(A2));
        set_route(&mut done, "rtb-000000a2", route(A2));
        assert!(plan(decide(&config(true), launched_subject(A2, true), &done)).zones[0].is_unchanged());

        // Partly done: a missing route is created, a blackholed one replaced.
        let mut partly = done.clone();
        set_route(&mut partly, "rtb-000000a1", None);
        set_route(&mut partly, "rtb-000000a2", blackhole(A2));
        let p = plan(decide(&config(true), launched_subject(A2, true), &partly));
        assert_eq!(kinds(&p.identity()), Vec::<String>::new());
        assert_eq!(kinds(&p.routes()), ["create_route rtb-000000a1", "replace_route rtb-000000a2"]);
    }

    #[test]
    fn leaving_without_a_replacement_fails_over_to_a_sibling() {
        let mut w = healthy();
        set_member(&mut w, "nat-a", vec![member(A1, "Terminating:Wait")]);
        let p = plan(decide(&config(true), leaving(A1, true), &w));
        let zone = p.zone("nat-a").unwrap();
        assert_eq!(
            zone.follows,
            Follows::Sibling { group: "nat-b".into(), instance_id: B1.into(), network_interface_id: eni(B1) }
        );
        assert_eq!(kinds(&zone.identity), Vec::<String>::new(), "the sibling's identity is already right");
        assert_eq!(kinds(&zone.routes), ["replace_route rtb-000000a1", "replace_route rtb-000000a2"]);
        assert!(!p.routes().iter().any(|a| a.resource().starts_with("eipalloc")), "the EIP never crosses zones");

        // The same from an EC2 state change (no group in the event: found from the instance's tag).
        let mut killed = healthy();
        set_state(&mut killed, A1, "shutting-down");
        let p = plan(decide(&config(true), Subject::Leaving { group: None, instance: A1, by_group: false }, &killed));
        assert!(matches!(p.zone("nat-a").unwrap().follows, Follows::Sibling { .. }));

        // Failover off: nothing moves, the zone waits for its replacement.
        let p = plan(decide(&config(false), leaving(A1, true), &w));
        let zone = p.zone("nat-a").unwrap();
        assert!(zone.is_unchanged());
        assert!(matches!(&zone.follows, Follows::Nothing { reason } if reason.contains("failover is off")));
    }

    #[test]
    fn a_sibling_that_is_leaving_or_dead_is_never_chosen() {
        let mut w = healthy();
        set_member(&mut w, "nat-a", vec![member(A1, "Terminating:Wait")]);
        set_member(&mut w, "nat-b", vec![member(B1, "Terminating:Wait")]);
        let p = plan(decide(&config(true), leaving(A1, true), &w));
        assert!(matches!(&p.zone("nat-a").unwrap().follows, Follows::Sibling { group, .. } if group == "nat-c"));

        let mut w = healthy();
        set_member(&mut w, "nat-a", vec![member(A1, "Terminating:Wait")]);
        set_state(&mut w, B1, "stopping");
        set_member(&mut w, "nat-c", vec![AsgMember { healthy: false, ..member(C1, "InService") }]);
        let p = plan(decide(&config(true), leaving(A1, true), &w));
        assert!(
            matches!(&p.zone("nat-a").unwrap().follows, Follows::Nothing { reason } if reason.contains("no healthy sibling")),
            "{p:?}"
        );
        assert!(p.routes().is_empty());
    }

    #[test]
    fn the_schedule_fails_over_dead_zones_leaves_good_tables_alone_and_fails_back() {
        // Zone a lost its NAT and no event came: blackholed routes go to a sibling.
        let mut dark = healthy();
        set_member(&mut dark, "nat-a", vec![]);
        set_state(&mut dark, A1, "terminated");
        set_route(&mut dark, "rtb-000000a1", blackhole(A1));
        set_route(&mut dark, "rtb-000000a2", route(A1)); // moto keeps a dead target "active"
        let p = plan(decide(&config(true), Subject::Everything, &dark));
        assert_eq!(kinds(&p.routes()), ["replace_route rtb-000000a1", "replace_route rtb-000000a2"]);
        assert!(p.zone("nat-b").unwrap().is_unchanged() && p.zone("nat-c").unwrap().is_unchanged());

        // Already on a healthy sibling (c, not the first by name): left there.
        let mut on_c = dark.clone();
        set_route(&mut on_c, "rtb-000000a1", route(C1));
        set_route(&mut on_c, "rtb-000000a2", route(C1));
        let p = plan(decide(&config(true), Subject::Everything, &on_c));
        assert!(p.routes().is_empty());
        assert!(matches!(&p.zone("nat-a").unwrap().follows, Follows::Sibling { group, .. } if group == "nat-c"));

        // A table on a NAT gateway (an operator's choice) is left alone too.
        let mut gateway = dark.clone();
        for t in ["rtb-000000a1", "rtb-000000a2"] {
            set_route(
                &mut gateway,
                t,
                Some(RouteView {
                    network_interface_id: None,
                    instance_id: None,
                    target: RouteTarget::Other("nat-0123456789abcdef0".into()),
                    active: true,
                }),
            );
        }
        assert!(plan(decide(&config(true), Subject::Everything, &gateway)).routes().is_empty());

        // Failover off: nothing moves.
        assert!(plan(decide(&config(false), Subject::Everything, &dark)).routes().is_empty());

        // The replacement proved itself: the zone comes back (identity first).
        let mut back = on_c.clone();
        back.instances.push(instance(A2, 'a', InstanceState::Running, 3_000, true));
        set_member(&mut back, "nat-a", vec![member(A2, "InService")]);
        let p = plan(decide(&config(true), Subject::Everything, &back));
        assert_eq!(
            p.zone("nat-a").unwrap().follows,
            Follows::Own { instance_id: A2.into(), network_interface_id: eni(A2) }
        );
        assert_eq!(
            kinds(&p.identity()),
            ["associate_address eipalloc-0000000a", "disable_source_dest_check eni-000000000000000a2"]
        );
        assert_eq!(kinds(&p.routes()), ["replace_route rtb-000000a1", "replace_route rtb-000000a2"]);
    }

    #[test]
    fn a_drained_nat_is_never_chosen_as_a_sibling() {
        // b is drained (its zone on c): a's NAT leaves, a goes to c, not to b (first by name).
        let mut w = healthy();
        drain(&mut w, "nat-b");
        set_route(&mut w, "rtb-000000b1", route(C1));
        set_member(&mut w, "nat-a", vec![member(A1, "Terminating:Wait")]);
        let p = plan(decide(&config(true), leaving(A1, true), &w));
        assert!(follows_sibling(&p, "nat-a", "nat-c"), "{p:?}");
        // A zone failed over onto the NAT being drained moves on with the drain itself.
        let mut w = healthy();
        set_member(&mut w, "nat-c", vec![]);
        set_state(&mut w, C1, "terminated");
        set_route(&mut w, "rtb-000000c1", route(B1));
        let p = plan(decide(&config(true), drain_subject("nat-b", true), &w));
        assert!(follows_sibling(&p, "nat-b", "nat-a") && follows_sibling(&p, "nat-c", "nat-a"), "{p:?}");
        assert_eq!(kinds(&p.routes()), ["replace_route rtb-000000b1", "replace_route rtb-000000c1"]);
        // Every sibling drained or gone: nothing can take the zone, nothing moves.
        let mut w = healthy();
        drain(&mut w, "nat-b");
        set_member(&mut w, "nat-c", vec![unhealthy(C1)]);
        let p = plan(decide(&config(true), drain_subject("nat-a", true), &w));
        let zone = p.zone("nat-a").unwrap();
        assert!(
            matches!(&zone.follows, Follows::Nothing { reason } if reason.contains("nat-a is drained") && reason.contains("no healthy sibling")),
            "{zone:?}"
        );
        assert!(p.routes().is_empty());
        // Failover off: the zone has nowhere to go either.
        let p = plan(decide(&config(false), drain_subject("nat-a", true), &healthy()));
        assert!(
            matches!(&p.zone("nat-a").unwrap().follows, Follows::Nothing { reason } if reason.contains("failover is off"))
        );
        assert!(p.routes().is_empty());
    }
}
