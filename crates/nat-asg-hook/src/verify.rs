//! `verify`: is every group healthy? The same observation and planner as the hook itself, so
//! "healthy" means exactly "the hook would change nothing".

use std::fmt::Write as _;

use serde::Serialize;

use crate::aws::{Clients, observe};
use crate::config::{Config, GroupConfig};
use crate::decide::{Decision, Follows, Subject, ZonePlan, decide};
use crate::model::{Action, World};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteHealth {
    pub route_table_id: String,
    /// Where the destination route points; None when the table has no such route.
    pub target: Option<String>,
    /// `active`, `blackhole` or `missing`.
    pub state: &'static str,
    pub ok: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupHealth {
    pub auto_scaling_group: String,
    pub availability_zone: String,
    pub healthy: bool,
    pub instance_id: Option<String>,
    pub network_interface_id: Option<String>,
    pub elastic_ip: Option<String>,
    /// The ENI the Elastic IP is associated with.
    pub elastic_ip_network_interface_id: Option<String>,
    pub source_dest_check: Option<bool>,
    pub routes: Vec<RouteHealth>,
    pub problems: Vec<String>,
}

/// Observes every zone (the state, then the groups, as the schedule does) and assesses each.
pub async fn verify(clients: &Clients, config: &Config) -> Vec<GroupHealth> {
    let world = match observe::observe_state_then_groups(clients, config, &[]).await {
        Ok(world) => world,
        Err(e) => {
            return config.groups.iter().map(|(n, g)| unobserved(n, g, format!("could not observe: {e}"))).collect();
        }
    };
    let plan = match decide(config, Subject::Everything, &world) {
        Ok(Decision::Plan(plan)) => plan,
        Ok(Decision::NotYetVisible { reason } | Decision::Stale { reason } | Decision::Ignored { reason }) => {
            return config.groups.iter().map(|(n, g)| unobserved(n, g, reason.clone())).collect();
        }
        Err(refusal) => return config.groups.iter().map(|(n, g)| unobserved(n, g, refusal.to_string())).collect(),
    };
    config
        .groups
        .iter()
        .map(|(name, group)| {
            let zone = plan.zone(name).ok_or_else(|| {
                plan.refused.iter().find(|r| r.group() == name).map(ToString::to_string).unwrap_or_default()
            });
            assess(name, group, &world, zone)
        })
        .collect()
}

fn unobserved(name: &str, group: &GroupConfig, problem: String) -> GroupHealth {
    GroupHealth {
        auto_scaling_group: name.to_owned(),
        availability_zone: group.availability_zone.clone(),
        healthy: false,
        instance_id: None,
        network_interface_id: None,
        elastic_ip: None,
        elastic_ip_network_interface_id: None,
        source_dest_check: None,
        routes: Vec::new(),
        problems: vec![problem],
    }
}

/// Pure: what the world and the planner's plan for the zone (or why there is none) say about it.
/// Healthy means: on its own NAT, and the hook would change nothing.
pub fn assess(name: &str, group: &GroupConfig, world: &World, zone: Result<&ZonePlan, String>) -> GroupHealth {
    let mut health = unobserved(name, group, String::new());
    health.problems.clear();
    let address = world.address(&group.eip_allocation_id);
    health.elastic_ip = address.and_then(|a| a.public_ip.clone());
    health.elastic_ip_network_interface_id = address.and_then(|a| a.network_interface_id.clone());
    let zone = match zone {
        Ok(zone) => zone,
        Err(problem) => {
            health.problems.push(problem);
            return health;
        }
    };
    let (own_eni, followed) = match &zone.follows {
        Follows::Own { instance_id, network_interface_id } => (Some(network_interface_id.as_str()), Some(instance_id)),
        Follows::Sibling { group, instance_id, .. } => {
            health.problems.push(format!(
                "failed over to {group} ({instance_id}): the zone leaves with that zone's Elastic IP until its own NAT is back"
            ));
            (None, Some(instance_id))
        }
        Follows::Nothing { reason } => {
            health.problems.push(reason.clone());
            (None, None)
        }
    };
    if let Some(id) = followed {
        health.instance_id = Some(id.clone());
        let eni = world.instance(id).and_then(|i| i.primary_eni.as_ref());
        health.network_interface_id = eni.map(|e| e.id.clone());
        health.source_dest_check = eni.map(|e| e.source_dest_check);
    }
    for action in zone.actions() {
        health.problems.push(match action {
            Action::AssociateAddress { previous_network_interface_id, network_interface_id, .. } => format!(
                "Elastic IP is on {}, not on {network_interface_id}",
                previous_network_interface_id.as_deref().unwrap_or("nothing")
            ),
            Action::DisableSourceDestCheck { network_interface_id } => {
                format!("source/dest check is on for {network_interface_id}")
            }
            Action::ReplaceRoute { route_table_id, previous_target, network_interface_id, .. } => {
                format!("{route_table_id}: default route goes to {previous_target}, not to {network_interface_id}")
            }
            Action::CreateRoute { route_table_id, .. } => format!("{route_table_id}: no default route"),
        });
    }
    for table_id in &group.route_table_ids {
        let route = world.table(table_id).and_then(|t| t.route.as_ref());
        health.routes.push(RouteHealth {
            route_table_id: table_id.clone(),
            target: route.map(|r| r.target.to_string()),
            state: match route {
                None => "missing",
                Some(r) if r.active => "active",
                Some(_) => "blackhole",
            },
            ok: route.is_some_and(|r| r.active && own_eni.is_some() && r.network_interface_id.as_deref() == own_eni),
        });
    }
    health.healthy = health.problems.is_empty() && own_eni.is_some();
    health
}

/// A plain-text table: one row per route table, the group's columns on its first row.
pub fn render_table(groups: &[GroupHealth], color: bool) -> String {
    let paint = |ok: bool, text: &str| match (color, ok) {
        (false, _) => text.to_owned(),
        (true, true) => format!("\x1b[32m{text}\x1b[0m"),
        (true, false) => format!("\x1b[31m{text}\x1b[0m"),
    };
    let header = [
        "GROUP",
        "ZONE",
        "INSTANCE",
        "ENI",
        "ELASTIC IP",
        "EIP ON",
        "SRC/DST",
        "ROUTE TABLE",
        "DEFAULT ROUTE",
        "STATE",
        "STATUS",
    ];
    let mut rows: Vec<Vec<(String, Option<bool>)>> = Vec::new();
    let dash = || "-".to_owned();
    for g in groups {
        let eip_ok = g.network_interface_id.is_some() && g.elastic_ip_network_interface_id == g.network_interface_id;
        let sdc = match g.source_dest_check {
            Some(false) => ("off".to_owned(), Some(true)),
            Some(true) => ("ON".to_owned(), Some(false)),
            None => (dash(), None),
        };
        let status = if g.healthy { "healthy" } else { "UNHEALTHY" };
        let routes = if g.routes.is_empty() { vec![None] } else { g.routes.iter().map(Some).collect() };
        for (i, route) in routes.into_iter().enumerate() {
            let first = i == 0;
            let cell = |text: Option<String>, ok: Option<bool>| {
                if first { (text.unwrap_or_else(dash), ok) } else { (String::new(), None) }
            };
            rows.push(vec![
                cell(Some(g.auto_scaling_group.clone()), None),
                cell(Some(g.availability_zone.clone()), None),
                cell(g.instance_id.clone(), None),
                cell(g.network_interface_id.clone(), None),
                cell(g.elastic_ip.clone(), None),
                cell(g.elastic_ip_network_interface_id.clone(), Some(eip_ok)),
                if first { sdc.clone() } else { (String::new(), None) },
                (route.map(|r| r.route_table_id.clone()).unwrap_or_else(dash), None),
                (route.and_then(|r| r.target.clone()).unwrap_or_else(dash), route.map(|r| r.ok)),
                (route.map(|r| r.state.to_owned()).unwrap_or_else(dash), route.map(|r| r.state == "active")),
                cell(Some(status.to_owned()), Some(g.healthy)),
            ]);
        }
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].0.len()).chain([header[c].len()]).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    let line: Vec<String> = header.iter().zip(&widths).map(|(h, w)| format!("{h:<w$}")).collect();
    let _ = writeln!(out, "{}", line.join("  ").trim_end());
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|((text, ok), w)| {
                let padded = format!("{text:<w$}");
                match ok {
                    Some(ok) if !text.is_empty() => paint(*ok, &padded),
                    _ => padded,
                }
            })
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    for g in groups.iter().filter(|g| !g.problems.is_empty()) {
        for problem in &g.problems {
            let _ = writeln!(out, "{}: {problem}", paint(false, &g.auto_scaling_group));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    fn config() -> Config {
        Config::from_json(
            r#"{"groups": {"nat-a": {"availability_zone": "us-east-1a", "eip_allocation_id": "eipalloc-11111111", "route_table_ids": ["rtb-11111111"]},
                           "nat-b": {"availability_zone": "us-east-1b", "eip_allocation_id": "eipalloc-22222222", "route_table_ids": ["rtb-22222222"]}}}"#,
        )
        .unwrap()
    }

    fn instance(id: &str, zone: &str) -> InstanceView {
        InstanceView {
            id: format!("i-{id}"),
            state: InstanceState::Running,
            availability_zone: format!("us-east-1{zone}"),
            launch_time_ms: 1,
            primary_eni: Some(Eni { id: format!("eni-{id}"), private_ip: None, source_dest_check: false }),
            group: Some(format!("nat-{zone}")),
        }
    }

    fn route(eni: &str) -> Option<RouteView> {
        Some(RouteView {
            network_interface_id: Some(eni.into()),
            instance_id: None,
            target: RouteTarget::NetworkInterface(eni.into()),
            active: true,
        })
    }

    fn world(route_a: &str) -> World {
        let mut w = World {
            instances: vec![instance("01234567", "a"), instance("89abcdef", "b")],
            addresses: vec![
                AddressView {
                    allocation_id: "eipalloc-11111111".into(),
                    public_ip: Some("198.51.100.7".into()),
                    network_interface_id: Some("eni-01234567".into()),
                },
                AddressView {
                    allocation_id: "eipalloc-22222222".into(),
                    public_ip: Some("198.51.100.8".into()),
                    network_interface_id: Some("eni-89abcdef".into()),
                },
            ],
            route_tables: vec![
                RouteTableView { id: "rtb-11111111".into(), route: route(route_a) },
                RouteTableView { id: "rtb-22222222".into(), route: route("eni-89abcdef") },
            ],
            ..World::default()
        };
        for (g, id) in [("nat-a", "i-01234567"), ("nat-b", "i-89abcdef")] {
            w.members.insert(
                g.into(),
                Some(vec![AsgMember { instance_id: id.into(), lifecycle_state: "InService".into(), healthy: true }]),
            );
        }
        w
    }

    fn health(w: &World) -> GroupHealth {
        let c = config();
        let Ok(Decision::Plan(plan)) = decide(&c, Subject::Everything, w) else { panic!("no plan") };
        assess("nat-a", c.group("nat-a").unwrap(), w, plan.zone("nat-a").ok_or_else(String::new))
    }

    #[test]
    fn healthy_only_when_the_hook_would_change_nothing() {
        let good = health(&world("eni-01234567"));
        assert!(good.healthy, "{good:?}");
        assert!(good.routes[0].ok);
        let bad = health(&world("eni-99999999"));
        assert!(!bad.healthy);
        assert!(!bad.routes[0].ok);
        assert_eq!(bad.problems, vec!["rtb-11111111: default route goes to eni-99999999, not to eni-01234567"]);
    }

    #[test]
    fn a_zone_failed_over_to_a_sibling_is_not_healthy_and_says_so() {
        let mut w = world("eni-89abcdef");
        w.members.insert("nat-a".into(), Some(vec![]));
        let h = health(&w);
        assert!(!h.healthy);
        assert!(!h.routes[0].ok, "a route cannot be right when the zone has no NAT of its own");
        assert!(h.problems[0].starts_with("failed over to nat-b (i-89abcdef)"), "{:?}", h.problems);
        assert_eq!(h.instance_id.as_deref(), Some("i-89abcdef"));
    }

    #[test]
    fn table_lists_every_route_and_the_problems() {
        let text = render_table(&[health(&world("eni-99999999"))], false);
        assert!(text.lines().next().unwrap().starts_with("GROUP"));
        assert!(
            text.contains("rtb-11111111") && text.contains("UNHEALTHY") && text.contains("nat-a: rtb-11111111"),
            "{text}"
        );
    }
}
