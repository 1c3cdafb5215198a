//! The observe round: four describe calls, sent concurrently, turned into an `Observation`.

use aws_sdk_ec2::types::{Filter, Instance, RouteState};
use tracing::instrument;

use super::Clients;
use crate::config::GroupConfig;
use crate::error::AwsError;
use crate::model::{
    AddressView, AsgMember, Eni, InstanceState, InstanceView, Observation, RouteTableView, RouteTarget, RouteView,
};

/// Describes the group, its EIP, its route tables and the given instances, in one concurrent round.
#[instrument(skip(clients, group, instance_ids), fields(instances = ?instance_ids))]
pub async fn observe(
    clients: &Clients,
    group_name: &str,
    group: &GroupConfig,
    destination: &str,
    instance_ids: &[String],
) -> Result<Observation, AwsError> {
    let (instances, members, address, route_tables) = tokio::try_join!(
        describe_instances(clients, instance_ids),
        describe_group(clients, group_name),
        describe_address(clients, &group.eip_allocation_id),
        describe_route_tables(clients, &group.route_table_ids, destination),
    )?;
    Ok(Observation { instances, members, address, route_tables })
}

/// `observe` (or, with no instance to start from, `observe_state_then_group`), then describes any
/// other instance the group holds. The follow-up is rare on a launch (an instance refresh overlap)
/// and costs one more round.
pub async fn observe_group(
    clients: &Clients,
    group_name: &str,
    group: &GroupConfig,
    destination: &str,
    instance_ids: &[String],
) -> Result<Observation, AwsError> {
    let mut observed = if instance_ids.is_empty() {
        observe_state_then_group(clients, group_name, group, destination).await?
    } else {
        observe(clients, group_name, group, destination, instance_ids).await?
    };
    let others = observed.undescribed_members();
    if !others.is_empty() {
        observed.instances.extend(describe_instances(clients, &others).await?);
    }
    Ok(observed)
}

/// For a reconcile that starts from the group (the schedule, `reconcile`, `verify`), off the
/// critical path: the EIP and the routes first, the group after. The routes can show an instance's
/// ENI only once a launch invocation has seen the group hold that instance, so a group read taken
/// afterwards holds it too. In one concurrent round, a group read answered before an instance
/// refresh's launch could meet routes read after it, and the reconcile would move them back to the
/// outgoing instance.
async fn observe_state_then_group(
    clients: &Clients,
    group_name: &str,
    group: &GroupConfig,
    destination: &str,
) -> Result<Observation, AwsError> {
    let (address, route_tables) = tokio::try_join!(
        describe_address(clients, &group.eip_allocation_id),
        describe_route_tables(clients, &group.route_table_ids, destination),
    )?;
    let members = describe_group(clients, group_name).await?;
    Ok(Observation { instances: Vec::new(), members, address, route_tables })
}

fn filter(name: &str, values: &[String]) -> Filter {
    Filter::builder().name(name).set_values(Some(values.to_vec())).build()
}

/// Instances by ID. A filter, not `InstanceIds`: an instance EC2 does not show yet is simply
/// absent instead of failing the whole call with `InvalidInstanceID.NotFound`.
pub async fn describe_instances(clients: &Clients, ids: &[String]) -> Result<Vec<InstanceView>, AwsError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let pages: Vec<_> = clients
        .ec2
        .describe_instances()
        .filters(filter("instance-id", ids))
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::from_sdk("DescribeInstances", e))?;
    Ok(pages
        .iter()
        .flat_map(|page| page.reservations())
        .flat_map(|reservation| reservation.instances())
        .filter_map(instance_view)
        .collect())
}

fn instance_view(instance: &Instance) -> Option<InstanceView> {
    let id = instance.instance_id()?.to_owned();
    let state = instance.state().and_then(|s| s.name()).map(|n| InstanceState::from_name(n.as_str()))?;
    let primary_eni = instance
        .network_interfaces()
        .iter()
        .find(|ni| ni.attachment().and_then(|a| a.device_index()).unwrap_or(0) == 0)
        .and_then(|ni| {
            Some(Eni {
                id: ni.network_interface_id()?.to_owned(),
                private_ip: ni.private_ip_address().map(str::to_owned),
                source_dest_check: ni.source_dest_check().unwrap_or(true),
            })
        });
    Some(InstanceView {
        id,
        state,
        availability_zone: instance.placement().and_then(|p| p.availability_zone()).unwrap_or_default().to_owned(),
        launch_time_ms: instance.launch_time().map(|t| t.to_millis().unwrap_or(i64::MAX)).unwrap_or(0),
        primary_eni,
    })
}

/// The group's members, or None when the group does not exist.
async fn describe_group(clients: &Clients, name: &str) -> Result<Option<Vec<AsgMember>>, AwsError> {
    let out = clients
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("DescribeAutoScalingGroups", e))?;
    Ok(out.auto_scaling_groups().iter().find(|g| g.auto_scaling_group_name() == Some(name)).map(|group| {
        group
            .instances()
            .iter()
            .filter_map(|i| {
                Some(AsgMember {
                    instance_id: i.instance_id()?.to_owned(),
                    lifecycle_state: i.lifecycle_state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                })
            })
            .collect()
    }))
}

async fn describe_address(clients: &Clients, allocation_id: &str) -> Result<Option<AddressView>, AwsError> {
    let out = clients
        .ec2
        .describe_addresses()
        .filters(filter("allocation-id", &[allocation_id.to_owned()]))
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("DescribeAddresses", e))?;
    Ok(out.addresses().iter().find(|a| a.allocation_id() == Some(allocation_id)).map(|a| AddressView {
        allocation_id: allocation_id.to_owned(),
        public_ip: a.public_ip().map(str::to_owned),
        network_interface_id: a.network_interface_id().filter(|id| !id.is_empty()).map(str::to_owned),
    }))
}

/// All of the group's tables in one call; for each, only the route for `destination`.
async fn describe_route_tables(
    clients: &Clients,
    ids: &[String],
    destination: &str,
) -> Result<Vec<RouteTableView>, AwsError> {
    let pages: Vec<_> = clients
        .ec2
        .describe_route_tables()
        .filters(filter("route-table-id", ids))
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::from_sdk("DescribeRouteTables", e))?;
    Ok(pages
        .iter()
        .flat_map(|page| page.route_tables())
        .filter_map(|table| {
            let route = table.routes().iter().find(|r| r.destination_cidr_block() == Some(destination)).map(|r| {
                let eni = r.network_interface_id().map(str::to_owned);
                let target = if let Some(id) = &eni {
                    RouteTarget::NetworkInterface(id.clone())
                } else if let Some(id) = r.instance_id() {
                    RouteTarget::Instance(id.to_owned())
                } else {
                    let other =
                        [r.nat_gateway_id(), r.gateway_id(), r.transit_gateway_id(), r.vpc_peering_connection_id()]
                            .into_iter()
                            .flatten()
                            .next()
                            .unwrap_or("unknown target");
                    RouteTarget::Other(other.to_owned())
                };
                RouteView { network_interface_id: eni, target, active: r.state() != Some(&RouteState::Blackhole) }
            });
            Some(RouteTableView { id: table.route_table_id()?.to_owned(), route })
        })
        .collect())
}
