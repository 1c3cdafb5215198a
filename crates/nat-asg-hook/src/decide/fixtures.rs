//! The test world, one for every planner room and for `verify`'s tests: three zones, a (the
//! subject), b and c (siblings). Instances: A1 old, A2 new in zone a; B1; C1.

use crate::config::Config;
use crate::decide::{Decision, Follows, Plan, Refusal, Subject};
use crate::model::*;

pub(crate) const A1: &str = "i-0000000000000000a";
pub(crate) const A2: &str = "i-000000000000000a2";
pub(crate) const B1: &str = "i-0000000000000000b";
pub(crate) const C1: &str = "i-0000000000000000c";

pub(crate) fn eni(id: &str) -> String {
    id.replace("i-", "eni-")
}

pub(crate) fn config(failover: bool) -> Config {
    let mut text = String::from(r#"{"groups": {"#);
    text.push_str(r#""nat-a": {"availability_zone": "us-east-1a", "eip_allocation_id": "eipalloc-0000000a", "route_table_ids": ["rtb-000000a1", "rtb-000000a2"]},"#);
    text.push_str(r#""nat-b": {"availability_zone": "us-east-1b", "eip_allocation_id": "eipalloc-0000000b", "route_table_ids": ["rtb-000000b1"]},"#);
    text.push_str(r#""nat-c": {"availability_zone": "us-east-1c", "eip_allocation_id": "eipalloc-0000000c", "route_table_ids": ["rtb-000000c1"]}"#);
    text.push_str(&format!(r#"}}, "failover": {failover}}}"#));
    Config::from_json(&text).unwrap()
}

pub(crate) fn instance(id: &str, zone: char, state: InstanceState, launched: i64, sdc: bool) -> InstanceView {
    InstanceView {
        id: id.into(),
        state,
        availability_zone: format!("us-east-1{zone}"),
        launch_time_ms: launched,
        primary_eni: Some(Eni { id: eni(id), private_ip: Some("10.0.0.10".into()), source_dest_check: sdc }),
        group: Some(format!("nat-{zone}")),
    }
}

pub(crate) fn member(id: &str, state: &str) -> AsgMember {
    AsgMember { instance_id: id.into(), lifecycle_state: state.into(), healthy: true }
}

pub(crate) fn route(to: &str) -> Option<RouteView> {
    Some(RouteView {
        network_interface_id: Some(eni(to)),
        instance_id: None,
        target: RouteTarget::NetworkInterface(eni(to)),
        active: true,
    })
}

pub(crate) fn blackhole(to: &str) -> Option<RouteView> {
    route(to).map(|r| RouteView { active: false, ..r })
}

/// Every zone healthy on its own NAT; zone a on A1.
pub(crate) fn healthy() -> World {
    let mut w = World {
        instances: vec![
            instance(A1, 'a', InstanceState::Running, 1_000, false),
            instance(B1, 'b', InstanceState::Running, 1_000, false),
            instance(C1, 'c', InstanceState::Running, 1_000, false),
        ],
        ..World::default()
    };
    for (zone, id) in [('a', A1), ('b', B1), ('c', C1)] {
        w.members.insert(format!("nat-{zone}"), Some(vec![member(id, "InService")]));
        w.addresses.push(AddressView {
            allocation_id: format!("eipalloc-0000000{zone}"),
            public_ip: Some(format!("198.51.100.{}", zone as u8)),
            network_interface_id: Some(eni(id)),
        });
    }
    for (table, to) in [("rtb-000000a1", A1), ("rtb-000000a2", A1), ("rtb-000000b1", B1), ("rtb-000000c1", C1)] {
        w.route_tables.push(RouteTableView { id: table.into(), route: route(to) });
    }
    w
}

pub(crate) fn set_member(w: &mut World, group: &str, members: Vec<AsgMember>) {
    w.members.insert(group.into(), Some(members));
}

pub(crate) fn set_route(w: &mut World, table: &str, route: Option<RouteView>) {
    w.route_tables.iter_mut().find(|t| t.id == table).unwrap().route = route;
}

pub(crate) fn set_state(w: &mut World, id: &str, state: &str) {
    w.instances.iter_mut().find(|i| i.id == id).unwrap().state = InstanceState::from_name(state);
}

/// Zone a mid-refresh: A2 proved itself (InService), EIP and routes still on A1.
pub(crate) fn refreshed() -> World {
    let mut w = healthy();
    w.instances.push(instance(A2, 'a', InstanceState::Running, 2_000, true));
    set_member(&mut w, "nat-a", vec![member(A1, "InService"), member(A2, "InService")]);
    w
}

pub(crate) fn plan(d: Result<Decision, Refusal>) -> Plan {
    match d {
        Ok(Decision::Plan(p)) => p,
        other => panic!("expected a plan, got {other:?}"),
    }
}

pub(crate) fn kinds(actions: &[Action]) -> Vec<String> {
    actions.iter().map(|a| format!("{} {}", a.kind(), a.resource())).collect()
}

pub(crate) fn launched_subject(id: &str, fresh: bool) -> Subject<'_> {
    Subject::Launched { group: "nat-a", instance: id, fresh }
}

pub(crate) fn leaving(id: &str, by_group: bool) -> Subject<'_> {
    Subject::Leaving { group: by_group.then_some("nat-a"), instance: id, by_group }
}

pub(crate) fn warned<'a>(id: &'a str, group: Option<&'static str>, proof: bool) -> Subject<'a> {
    Subject::Warned { group, instance: id, proof, fresh: false }
}

pub(crate) fn unhealthy(id: &str) -> AsgMember {
    AsgMember { healthy: false, ..member(id, "InService") }
}

pub(crate) fn drain(w: &mut World, group: &str) {
    w.drained
        .insert(group.into(), DrainMark { since: "2026-12-06T10:00:00Z".into(), reason: "alice: kernel patch".into() });
}

pub(crate) fn drain_subject(group: &str, drained: bool) -> Subject<'_> {
    Subject::Drain { group, drained }
}

/// Zone a drained onto b: the mark on nat-a, its tables on B1, its EIP still on A1 (never crosses zones).
pub(crate) fn drained_on_b() -> World {
    let mut w = healthy();
    drain(&mut w, "nat-a");
    set_route(&mut w, "rtb-000000a1", route(B1));
    set_route(&mut w, "rtb-000000a2", route(B1));
    w
}

pub(crate) fn follows_sibling(p: &Plan, zone: &str, sibling: &str) -> bool {
    matches!(&p.zone(zone).map(|z| &z.follows), Some(Follows::Sibling { group, .. }) if group == sibling)
}
