//! The hook's configuration: which Auto Scaling groups it owns and, per group, the zone, the
//! static Elastic IP and the private route tables. Parsed and validated once, at start-up.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::capacity::SpotFallback;

/// The default destination the hook owns in every private route table.
pub const DEFAULT_DESTINATION: &str = "0.0.0.0/0";

/// Name of the environment variable that carries the configuration JSON.
pub const CONFIG_ENV: &str = "NAT_ASG_HOOK_CONFIG";

/// One NAT group: a single-instance Auto Scaling group in one Availability Zone.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    pub availability_zone: String,
    pub eip_allocation_id: String,
    pub route_table_ids: Vec<String>,
}

/// The whole configuration, as rendered by Terraform (`hook_config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Groups by Auto Scaling group name, in name order (deterministic reports).
    pub groups: BTreeMap<String, GroupConfig>,
    pub destination_cidr_block: String,
    /// When a zone has no NAT of its own, point its tables at a healthy sibling zone's NAT.
    pub failover: bool,
    /// The groups buy Spot with an on-demand fallback (the module's `capacity = "spot-with-fallback"`).
    pub spot_fallback: Option<SpotFallback>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpotFallback {
    retry_spot_after_seconds: u64,
}

/// The wait before Spot is tried again: at least 15 minutes (each try is a replacement), at most a
/// week (a longer one is surely a unit mistake). The module's variable has the same bounds.
const MIN_RETRY_SPOT_AFTER_SECONDS: u64 = 900;
const MAX_RETRY_SPOT_AFTER_SECONDS: u64 = 7 * 24 * 3600;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    groups: BTreeMap<String, GroupConfig>,
    #[serde(default)]
    destination_cidr_block: Option<String>,
    #[serde(default)]
    failover: Option<bool>,
    #[serde(default)]
    spot_fallback: Option<RawSpotFallback>,
}

/// Why a configuration was refused. The message names the group and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Parses and validates the configuration JSON.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig =
            serde_json::from_str(text).map_err(|e| ConfigError(format!("not valid configuration JSON: {e}")))?;
        let config = Config {
            groups: raw.groups,
            destination_cidr_block: raw.destination_cidr_block.unwrap_or_else(|| DEFAULT_DESTINATION.to_owned()),
            failover: raw.failover.unwrap_or(true),
            spot_fallback: raw
                .spot_fallback
                .map(|f| {
                    if !(MIN_RETRY_SPOT_AFTER_SECONDS..=MAX_RETRY_SPOT_AFTER_SECONDS).contains(&f.retry_spot_after_seconds) {
                        return Err(ConfigError(format!(
                            "spot_fallback.retry_spot_after_seconds {} is not from {MIN_RETRY_SPOT_AFTER_SECONDS} (15 minutes: each try is a replacement) to {MAX_RETRY_SPOT_AFTER_SECONDS} (a week), in seconds",
                            f.retry_spot_after_seconds
                        )));
                    }
                    Ok(SpotFallback { retry_spot_after: std::time::Duration::from_secs(f.retry_spot_after_seconds) })
                })
                .transpose()?,
        };
        config.validate()?;
        Ok(config)
    }

    /// Reads the configuration from `NAT_ASG_HOOK_CONFIG`.
    pub fn from_env() -> Result<Self, ConfigError> {
        match std::env::var(CONFIG_ENV) {
            Ok(text) if !text.trim().is_empty() => Self::from_json(&text),
            _ => Err(ConfigError(format!(
                "{CONFIG_ENV} is not set (or pass --config FILE); it holds the JSON that Terraform outputs as hook_config"
            ))),
        }
    }

    /// Reads the configuration from a file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
        Self::from_json(&text)
    }

    pub fn group(&self, name: &str) -> Option<&GroupConfig> {
        self.groups.get(name)
    }

    /// The group whose zone owns this route table.
    pub fn group_of_table(&self, table: &str) -> Option<&str> {
        self.groups.iter().find(|(_, g)| g.route_table_ids.iter().any(|t| t == table)).map(|(name, _)| name.as_str())
    }

    pub fn group_names(&self) -> Vec<String> {
        self.groups.keys().cloned().collect()
    }

    pub fn all_route_table_ids(&self) -> Vec<String> {
        self.groups.values().flat_map(|g| g.route_table_ids.iter().cloned()).collect()
    }

    pub fn all_allocation_ids(&self) -> Vec<String> {
        self.groups.values().map(|g| g.eip_allocation_id.clone()).collect()
    }

    /// The region the configured zones are in, when they all agree (a configuration spans one
    /// region: the hook's clients talk to one).
    pub fn region(&self) -> Option<String> {
        let mut regions = self.groups.values().map(|g| region_of_zone(&g.availability_zone));
        let first = regions.next()??;
        regions.all(|r| r.as_deref() == Some(first.as_str())).then_some(first)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.groups.is_empty() {
            return Err(ConfigError("groups is empty: configure at least one NAT Auto Scaling group".into()));
        }
        if !is_ipv4_cidr(&self.destination_cidr_block) {
            return Err(ConfigError(format!(
                "destination_cidr_block {:?} is not an IPv4 CIDR block such as 0.0.0.0/0",
                self.destination_cidr_block
            )));
        }
        let mut tables: BTreeMap<&str, &str> = BTreeMap::new();
        let mut eips: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, group) in &self.groups {
            let bad = |field: &str, value: &str, want: &str| {
                ConfigError(format!("group {name:?}: {field} {value:?} is not {want}"))
            };
            if name.is_empty() || name.len() > 255 {
                return Err(ConfigError(format!("group name {name:?} must be 1 to 255 characters")));
            }
            if !is_availability_zone(&group.availability_zone) {
                return Err(bad(
                    "availability_zone",
                    &group.availability_zone,
                    "an Availability Zone name such as us-east-1a",
                ));
            }
            if !is_aws_id(&group.eip_allocation_id, "eipalloc") {
                return Err(bad(
                    "eip_allocation_id",
                    &group.eip_allocation_id,
                    "an allocation ID such as eipalloc-0123456789abcdef0",
                ));
            }
            if let Some(other) = eips.insert(&group.eip_allocation_id, name) {
                return Err(ConfigError(format!(
                    "group {name:?}: eip_allocation_id {:?} is also used by group {other:?}; each group needs its own Elastic IP",
                    group.eip_allocation_id
                )));
            }
            if group.route_table_ids.is_empty() {
                return Err(ConfigError(format!(
                    "group {name:?}: route_table_ids is empty; list the AZ's private route tables"
                )));
            }
            let mut own = BTreeSet::new();
            for table in &group.route_table_ids {
                if !is_aws_id(table, "rtb") {
                    return Err(bad("route_table_ids entry", table, "a route table ID such as rtb-0123456789abcdef0"));
                }
                if !own.insert(table.as_str()) {
                    return Err(ConfigError(format!("group {name:?}: route table {table:?} is listed twice")));
                }
                if let Some(other) = tables.insert(table, name) {
                    return Err(ConfigError(format!(
                        "group {name:?}: route table {table:?} is also listed by group {other:?}; a table's default route can follow only one NAT"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// `prefix-` followed by 8 or 17 lowercase hex digits (the two EC2 ID lengths).
pub fn is_aws_id(value: &str, prefix: &str) -> bool {
    value.strip_prefix(prefix).and_then(|rest| rest.strip_prefix('-')).is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17) && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// `us-east-1a`, `eu-central-2c`, `us-gov-west-1b`, `us-west-2-lax-1a`: lowercase words joined by
/// hyphens, a region digit somewhere, ending in the zone letter.
fn is_availability_zone(value: &str) -> bool {
    let bytes = value.as_bytes();
    value.len() >= 4
        && value.len() <= 32
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_lowercase)
        && bytes.last().is_some_and(u8::is_ascii_lowercase)
        && bytes.iter().any(u8::is_ascii_digit)
        && value.contains('-')
        && !value.contains("--")
}

/// The region of an Availability Zone (or Local / Wavelength Zone): the words up to the first one
/// that starts with a digit, and that one's digits. `us-east-1a` and `us-east-1-bos-1a` are in
/// `us-east-1`, `us-gov-west-1b` in `us-gov-west-1`.
pub fn region_of_zone(zone: &str) -> Option<String> {
    let mut words = Vec::new();
    for word in zone.split('-') {
        if word.starts_with(|c: char| c.is_ascii_digit()) {
            let digits: String = word.chars().take_while(char::is_ascii_digit).collect();
            words.push(digits);
            return (words.len() >= 2).then(|| words.join("-"));
        }
        words.push(word.to_owned());
    }
    None
}

fn is_ipv4_cidr(value: &str) -> bool {
    let Some((addr, len)) = value.split_once('/') else {
        return false;
    };
    addr.parse::<std::net::Ipv4Addr>().is_ok() && len.parse::<u8>().is_ok_and(|l| l <= 32) && !len.starts_with('+')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(groups: &str) -> String {
        format!(r#"{{"groups": {groups}}}"#)
    }

    const GOOD: &str = r#"{"nat-a": {"availability_zone": "us-east-1a", "eip_allocation_id": "eipalloc-0123456789abcdef0", "route_table_ids": ["rtb-0123456789abcdef0", "rtb-11111111"]},
                           "nat-b": {"availability_zone": "us-east-1b", "eip_allocation_id": "eipalloc-22222222", "route_table_ids": ["rtb-33333333"]}}"#;

    #[test]
    fn accepts_the_contract_shape_with_default_destination() {
        let config = Config::from_json(&json(GOOD)).unwrap();
        assert_eq!(config.destination_cidr_block, "0.0.0.0/0");
        assert!(config.failover, "failover is on unless turned off");
        assert_eq!(config.groups.len(), 2);
        assert_eq!(config.group_of_table("rtb-33333333"), Some("nat-b"));
        assert_eq!(config.group_of_table("rtb-99999999"), None);
        assert_eq!(config.group("nat-a").unwrap().route_table_ids.len(), 2);
    }

    #[test]
    fn failover_can_be_turned_off() {
        let text = format!(r#"{{"groups": {GOOD}, "failover": false}}"#);
        assert!(!Config::from_json(&text).unwrap().failover);
        let wrong = format!(r#"{{"groups": {GOOD}, "failover": "no"}}"#);
        assert!(Config::from_json(&wrong).unwrap_err().to_string().contains("not valid configuration JSON"));
    }

    #[test]
    fn the_spot_fallback_is_off_unless_configured_and_its_wait_is_checked() {
        assert_eq!(Config::from_json(&json(GOOD)).unwrap().spot_fallback, None);
        let text = format!(r#"{{"groups": {GOOD}, "spot_fallback": {{"retry_spot_after_seconds": 21600}}}}"#);
        let fallback = Config::from_json(&text).unwrap().spot_fallback.unwrap();
        assert_eq!(fallback.retry_spot_after, std::time::Duration::from_secs(21600));
        for wrong in [0, 899, 604_801] {
            let text = format!(r#"{{"groups": {GOOD}, "spot_fallback": {{"retry_spot_after_seconds": {wrong}}}}}"#);
            assert!(Config::from_json(&text).unwrap_err().to_string().contains("retry_spot_after_seconds"), "{wrong}");
        }
        let unknown = format!(r#"{{"groups": {GOOD}, "spot_fallback": {{"after": 1}}}}"#);
        assert!(Config::from_json(&unknown).unwrap_err().to_string().contains("not valid configuration JSON"));
    }

    #[test]
    fn accepts_an_explicit_destination() {
        let text = format!(r#"{{"groups": {GOOD}, "destination_cidr_block": "10.99.0.0/16"}}"#);
        assert_eq!(Config::from_json(&text).unwrap().destination_cidr_block, "10.99.0.0/16");
    }

    #[test]
    fn refusals_name_the_group_and_field() {
        let cases = [
            (json("{}"), "groups is empty"),
            (
                json(
                    r#"{"g": {"availability_zone": "us-east-1a", "eip_allocation_id": "eipalloc-0123456789abcdef0", "route_table_ids": []}}"#,
                ),
                r#"group "g": route_table_ids is empty"#,
            ),
            (
                json(
                    r#"{"g": {"availability_zone": "us-east-1a", "eip_allocation_id": "eip-1", "route_table_ids": ["rtb-11111111"]}}"#,
                ),
                r#"group "g": eip_allocation_id "eip-1""#,
            ),
            (
                json(
                    r#"{"g": {"availability_zone": "US-EAST-1A", "eip_allocation_id": "eipalloc-11111111", "route_table_ids": ["rtb-11111111"]}}"#,
                ),
                r#"group "g": availability_zone"#,
            ),
            (
                json(
                    r#"{"g": {"availability_zone": "us-east-1a", "eip_allocation_id": "eipalloc-11111111", "route_table_ids": ["rtb-xyz"]}}"#,
                ),
                r#"group "g": route_table_ids entry "rtb-xyz""#,
            ),
            (
                json(
                    r#"{"g": {"availability_zone": "us-east-1a", "eip_allocation_id": "eipalloc-11111111", "route_table_ids": ["rtb-11111111", "rtb-11111111"]}}"#,
                ),
                "listed twice",
            ),
            (
                json(
                    r#"{"a": {"availability_zone": "us-east-1a", "eip_allocation_id": "eipalloc-11111111", "route_table_ids": ["rtb-11111111"]},
                     "b": {"availability_zone": "us-east-1b", "eip_allocation_id": "eipalloc-22222222", "route_table_ids": ["rtb-11111111"]}}"#,
                ),
                r#"group "b": route table "rtb-11111111" is also listed by group "a""#,
            ),
            (
                json(
                    r#"{"a": {"availability_zone": "us-east-1a", "eip_allocation_id": "eipalloc-11111111", "route_table_ids": ["rtb-11111111"]},
                     "b": {"availability_zone": "us-east-1b", "eip_allocation_id": "eipalloc-11111111", "route_table_ids": ["rtb-22222222"]}}"#,
                ),
                r#"group "b": eip_allocation_id "eipalloc-11111111" is also used by group "a""#,
            ),
            (
                json(
                    r#"{"g": {"availability_zone": "us-east-1a", "eip_allocation_id": "eipalloc-11111111", "route_tables": ["rtb-11111111"]}}"#,
                ),
                "unknown field `route_tables`",
            ),
            (format!(r#"{{"groups": {GOOD}, "destination_cidr_block": "0.0.0.0/33"}}"#), "destination_cidr_block"),
            ("not json".to_owned(), "not valid configuration JSON"),
        ];
        for (text, want) in cases {
            let err = Config::from_json(&text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}\n  gave: {err}\n  want: {want}");
        }
    }

    #[test]
    fn the_region_comes_from_the_zones() {
        assert_eq!(Config::from_json(&json(GOOD)).unwrap().region().as_deref(), Some("us-east-1"));
        for (zone, region) in [
            ("us-east-1a", Some("us-east-1")),
            ("us-gov-west-1b", Some("us-gov-west-1")),
            ("us-west-2-lax-1a", Some("us-west-2")),
            ("ap-northeast-1c", Some("ap-northeast-1")),
            ("nodigits", None),
        ] {
            assert_eq!(region_of_zone(zone).as_deref(), region, "{zone}");
        }
        let two = json(
            r#"{"a": {"availability_zone": "us-east-1a", "eip_allocation_id": "eipalloc-11111111", "route_table_ids": ["rtb-11111111"]},
                "b": {"availability_zone": "eu-west-1a", "eip_allocation_id": "eipalloc-22222222", "route_table_ids": ["rtb-22222222"]}}"#,
        );
        assert_eq!(Config::from_json(&two).unwrap().region(), None, "zones of two regions name no region");
    }

    #[test]
    fn id_shapes() {
        assert!(is_aws_id("rtb-0123456789abcdef0", "rtb"));
        assert!(is_aws_id("rtb-01234567", "rtb"));
        assert!(!is_aws_id("rtb-0123456789ABCDEF0", "rtb"));
        assert!(!is_aws_id("rtb-0123", "rtb"));
        assert!(!is_aws_id("rtb0123456789abcdef0", "rtb"));
        assert!(!is_aws_id("eipalloc-01234567", "rtb"));
        for zone in ["us-east-1a", "eu-central-2c", "us-gov-west-1b", "us-west-2-lax-1a"] {
            assert!(is_availability_zone(zone), "{zone}");
        }
        for zone in ["", "us-east-1", "useast1a", "us--east-1a", "us-east-1A"] {
            assert!(!is_availability_zone(zone), "{zone}");
        }
    }
}
