//! The drain mark on a NAT group: `drain` writes the tag, `undrain` deletes it. Only the operator's
//! tool calls these (with the operator's permissions); the Lambda only reads the tag.

use aws_sdk_autoscaling::types::Tag;
use tracing::{info, instrument};

use super::Clients;
use crate::error::AwsError;
use crate::model::DRAINED_TAG;

/// The group's tag, never propagated to the instances it launches.
fn tag(group: &str, value: Option<&str>) -> Tag {
    Tag::builder()
        .resource_id(group)
        .resource_type("auto-scaling-group")
        .key(DRAINED_TAG)
        .set_value(value.map(str::to_owned))
        .propagate_at_launch(false)
        .build()
}

/// Marks the group drained (CreateOrUpdateTags).
#[instrument(skip(clients))]
pub async fn mark_drained(clients: &Clients, group: &str, value: &str) -> Result<(), AwsError> {
    clients
        .autoscaling
        .create_or_update_tags()
        .tags(tag(group, Some(value)))
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("CreateOrUpdateTags", e))?;
    info!("group marked drained");
    Ok(())
}

/// Removes the group's drain mark (DeleteTags).
#[instrument(skip(clients))]
pub async fn clear_drained(clients: &Clients, group: &str) -> Result<(), AwsError> {
    clients
        .autoscaling
        .delete_tags()
        .tags(tag(group, None))
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("DeleteTags", e))?;
    info!("drain mark removed");
    Ok(())
}
