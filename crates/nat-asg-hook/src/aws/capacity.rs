//! The Spot fallback's calls: read how each NAT group buys its instance (and when Spot was last
//! unavailable), switch a group between Spot and on-demand.

use aws_sdk_autoscaling::primitives::{DateTime, DateTimeFormat};
use aws_sdk_autoscaling::types::{AutoScalingGroup, InstancesDistribution, MixedInstancesPolicy, Tag};
use tracing::{info, instrument};

use super::{Clients, observe};
use crate::capacity::{Distribution, GroupCapacity, SPOT_UNAVAILABLE_TAG};
use crate::error::AwsError;

/// A group as read, with its whole instances distribution: a switch writes it back with only the
/// base capacity changed.
#[derive(Debug, Clone)]
pub struct GroupRead {
    pub capacity: GroupCapacity,
    distribution: Option<InstancesDistribution>,
}

/// The named groups that exist, each with its distribution and Spot mark (one call).
pub async fn read(clients: &Clients, names: &[String]) -> Result<Vec<GroupRead>, AwsError> {
    Ok(observe::auto_scaling_groups(clients, names)
        .await?
        .iter()
        .filter(|g| g.auto_scaling_group_name().is_some_and(|n| names.iter().any(|x| x == n)))
        .map(group_read)
        .collect())
}

/// How a group buys its instance, as DescribeAutoScalingGroups describes it (observe reads it with
/// the members).
pub fn group_capacity(group: &AutoScalingGroup) -> GroupCapacity {
    group_read(group).capacity
}

fn group_read(group: &AutoScalingGroup) -> GroupRead {
    let distribution = group.mixed_instances_policy().and_then(|p| p.instances_distribution()).cloned();
    let spot_unavailable_ms = group
        .tags()
        .iter()
        .find(|t| t.key() == Some(SPOT_UNAVAILABLE_TAG))
        .and_then(|t| t.value())
        .and_then(|v| DateTime::from_str(v.trim(), DateTimeFormat::DateTime).ok())
        .and_then(|t| t.to_millis().ok());
    GroupRead {
        capacity: GroupCapacity {
            group: group.auto_scaling_group_name().unwrap_or_default().to_owned(),
            // A mixed instances policy without a distribution takes AWS's defaults: base 0, 100 % on-demand.
            distribution: group.mixed_instances_policy().map(|_| Distribution {
                on_demand_base_capacity: distribution.as_ref().and_then(|d| d.on_demand_base_capacity()).unwrap_or(0),
                on_demand_percentage_above_base: distribution
                    .as_ref()
                    .and_then(|d| d.on_demand_percentage_above_base_capacity())
                    .unwrap_or(100),
            }),
            spot_unavailable_ms,
        },
        distribution,
    }
}

/// UTC, RFC 3339, to the second: the tag's value.
pub fn utc(ms: i64) -> String {
    DateTime::from_millis(ms).fmt(DateTimeFormat::DateTime).unwrap_or_else(|_| ms.to_string())
}

/// Writes when Spot was found unavailable on the group (CreateOrUpdateTags; never propagated).
#[instrument(skip(clients))]
pub async fn mark_spot_unavailable(clients: &Clients, group: &str, ms: i64) -> Result<(), AwsError> {
    let tag = Tag::builder()
        .resource_id(group)
        .resource_type("auto-scaling-group")
        .key(SPOT_UNAVAILABLE_TAG)
        .value(utc(ms))
        .propagate_at_launch(false)
        .build();
    clients
        .autoscaling
        .create_or_update_tags()
        .tags(tag)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("CreateOrUpdateTags", e))?;
    Ok(())
}

/// Sets the group's on-demand base capacity, every other field of its distribution as read
/// (UpdateAutoScalingGroup with the mixed instances policy's distribution only: the launch
/// template and its overrides stay as they are).
#[instrument(skip(clients, read), fields(group = %read.capacity.group))]
pub async fn set_on_demand_base(clients: &Clients, read: &GroupRead, base: i32) -> Result<(), AwsError> {
    let current = read.distribution.as_ref();
    let distribution = InstancesDistribution::builder()
        .set_on_demand_allocation_strategy(current.and_then(|d| d.on_demand_allocation_strategy()).map(str::to_owned))
        .on_demand_base_capacity(base)
        .set_on_demand_percentage_above_base_capacity(
            current.and_then(|d| d.on_demand_percentage_above_base_capacity()),
        )
        .set_spot_allocation_strategy(current.and_then(|d| d.spot_allocation_strategy()).map(str::to_owned))
        .set_spot_instance_pools(current.and_then(|d| d.spot_instance_pools()))
        .set_spot_max_price(current.and_then(|d| d.spot_max_price()).filter(|p| !p.is_empty()).map(str::to_owned))
        .build();
    clients
        .autoscaling
        .update_auto_scaling_group()
        .auto_scaling_group_name(&read.capacity.group)
        .mixed_instances_policy(MixedInstancesPolicy::builder().instances_distribution(distribution).build())
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("UpdateAutoScalingGroup", e))?;
    info!(on_demand_base_capacity = base, "group's purchase switched");
    Ok(())
}
