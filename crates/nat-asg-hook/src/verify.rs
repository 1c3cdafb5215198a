//! `verify`: is every group healthy? The same observation and planner as the hook itself, so
//! "healthy" means exactly "the hook would change nothing".

use std::fmt::Write as _;

use futures_util::future::join_all;
use serde::Serialize;

use crate::aws::{Clients, observe};
use crate::config::{Config, GroupConfig};
use crate::decide::{Decision, Refusal, Subject, decide};
use crate::model::{Action, Observation};

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

/// Observes every group concurrently and assesses it.
pub async fn verify(clients: &Clients, config: &Config) -> Vec<GroupHealth> {
    let destination = &config.destination_cidr_block;
    join_all(config.groups.iter().map(|(name, group)| async move {
        match observe::observe_group(clients, name, group, destination, &[]).await {
            Ok(observed) => {
                let decision = decide(name, group, destination, Subject::InService, &observed);
                assess(name, group, &observed, &decision)
            }
            Err(e) => unobserved(name, group, format!("could not observe: {e}")),
        }
    }))
    .await
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

/// Pure: what the observation and the planner's decision say about one group.
pub fn assess(
    name: &str,
    group: &GroupConfig,
    observed: &Observation,
    decision: &Result<Decision, Refusal>,
) -> GroupHealth {
    let mut health = unobserved(name, group, String::new());
    health.problems.clear();
    health.elastic_ip = observed.address.as_ref().and_then(|a| a.public_ip.clone());
    health.elastic_ip_network_interface_id = observed.address.as_ref().and_then(|a| a.network_interface_id.clone());
    let (owner_eni, actions): (Option<&str>, &[Action]) = match decision {
        Ok(Decision::Converge { instance_id, network_interface_id, actions }) => {
            health.instance_id = Some(instance_id.clone());
            health.network_interface_id = Some(network_interface_id.clone());
            health.source_dest_check =
                observed.instance(instance_id).and_then(|i| i.primary_eni.as_ref()).map(|e| e.source_dest_check);
            (Some(network_interface_id.as_str()), actions)
        }
        Ok(Decision::Stale { reason } | Decision::NoInstance { reason } | Decision::NotYetVisible { reason }) => {
            health.problems.push(reason.clone());
            (None, &[])
        }
        Err(refusal) => {
            health.problems.push(refusal.to_string());
            (None, &[])
        }
    };
    for action in actions {
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
        let route = observed.route_tables.iter().find(|t| &t.id == table_id).and_then(|t| t.route.as_ref());
        health.routes.push(RouteHealth {
            route_table_id: table_id.clone(),
            target: route.map(|r| r.target.to_string()),
            state: match route {
                None => "missing",
                Some(r) if r.active => "active",
                Some(_) => "blackhole",
            },
            ok: route
                .is_some_and(|r| r.active && owner_eni.is_some() && r.network_interface_id.as_deref() == owner_eni),
        });
    }
    health.healthy = health.problems.is_empty() && owner_eni.is_some();
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

    fn group() -> GroupConfig {
        GroupConfig {
            availability_zone: "us-east-1a".into(),
            eip_allocation_id: "eipalloc-11111111".into(),
            route_table_ids: vec!["rtb-11111111".into()],
        }
    }

    fn observed(route_eni: &str) -> Observation {
        Observation {
            instances: vec![InstanceView {
                id: "i-01234567".into(),
                state: InstanceState::Running,
                availability_zone: "us-east-1a".into(),
                launch_time_ms: 1,
                primary_eni: Some(Eni { id: "eni-01234567".into(), private_ip: None, source_dest_check: false }),
            }],
            members: Some(vec![AsgMember { instance_id: "i-01234567".into(), lifecycle_state: "InService".into() }]),
            address: Some(AddressView {
                allocation_id: "eipalloc-11111111".into(),
                public_ip: Some("198.51.100.7".into()),
                network_interface_id: Some("eni-01234567".into()),
            }),
            route_tables: vec![RouteTableView {
                id: "rtb-11111111".into(),
                route: Some(RouteView {
                    network_interface_id: Some(route_eni.into()),
                    target: RouteTarget::NetworkInterface(route_eni.into()),
                    active: true,
                }),
            }],
        }
    }

    fn health(o: &Observation) -> GroupHealth {
        assess("nat-a", &group(), o, &decide("nat-a", &group(), "0.0.0.0/0", Subject::InService, o))
    }

    #[test]
    fn healthy_only_when_the_hook_would_change_nothing() {
        let good = health(&observed("eni-01234567"));
        assert!(good.healthy, "{good:?}");
        assert!(good.routes[0].ok);
        let bad = health(&observed("eni-99999999"));
        assert!(!bad.healthy);
        assert!(!bad.routes[0].ok);
        assert_eq!(bad.problems, vec!["rtb-11111111: default route goes to eni-99999999, not to eni-01234567"]);
        let empty = health(&Observation { members: Some(vec![]), ..observed("eni-01234567") });
        assert!(!empty.healthy);
        assert!(!empty.routes[0].ok, "a route cannot be right when there is no instance");
    }

    #[test]
    fn table_lists_every_route_and_the_problems() {
        let text = render_table(&[health(&observed("eni-99999999"))], false);
        assert!(text.lines().next().unwrap().starts_with("GROUP"));
        assert!(
            text.contains("rtb-11111111") && text.contains("UNHEALTHY") && text.contains("nat-a: rtb-11111111"),
            "{text}"
        );
    }
}
