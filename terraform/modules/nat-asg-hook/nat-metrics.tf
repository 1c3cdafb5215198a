################################################################################
# What each NAT carries (the nat-instance module's nat-metrics publishes it every minute, namespace
# nat_metric_namespace, dimension AutoScalingGroupName): per zone, three alarms, and one dashboard
# for the deployment that the runbook starts from.
################################################################################

locals {
  # Zone => group, in zone order (the dashboard's lines and the alarms' names).
  nat_zones = { for group, settings in var.groups : settings.availability_zone => group }

  nat_alarms = merge([
    for zone, group in local.nat_zones : {
      # The connection-tracking table fills: new flows are dropped once it is full (the NAT's
      # self-check counts 95 % as an own fault and replaces the NAT; this warns well before).
      "conntrack-${zone}" = {
        zone                = zone
        group               = group
        description         = "The NAT of ${zone} (${group}) holds more than ${var.conntrack_alarm_percent} % of its connection-tracking table: new connections are dropped when it is full. Runbook: \"Connection tracking filling up\""
        metric_name         = "ConntrackUsePercent"
        statistic           = "Maximum"
        threshold           = var.conntrack_alarm_percent
        comparison_operator = "GreaterThanThreshold"
        evaluation_periods  = 2
        treat_missing_data  = "notBreaching" # a silent NAT is the nat-silent alarm's
      }
      # Drops in every minute of drops_alarm_minutes: not one burst, a NAT that keeps losing packets.
      "drops-${zone}" = {
        zone                = zone
        group               = group
        description         = "The NAT of ${zone} (${group}) dropped at least ${var.drops_alarm_per_minute} packets a minute for ${var.drops_alarm_minutes} minutes (connection tracking drops and insert failures, its interface's drops). Runbook: \"A NAT keeps dropping packets\""
        metric_name         = "PacketsDropCount"
        statistic           = "Sum"
        threshold           = var.drops_alarm_per_minute
        comparison_operator = "GreaterThanOrEqualToThreshold"
        evaluation_periods  = var.drops_alarm_minutes
        treat_missing_data  = "notBreaching"
      }
      # Every NAT publishes every minute, busy or idle: nothing from a zone's group for
      # nat_silent_alarm_minutes is a NAT gone, or one that can no longer publish. Missing data
      # breaches: that is the point.
      "nat-silent-${zone}" = {
        zone                = zone
        group               = group
        description         = "No NAT of ${zone} (${group}) has published its metrics for ${var.nat_silent_alarm_minutes} minutes: the zone has no working NAT of its own, or its NAT cannot reach CloudWatch. Runbook: \"A zone's NAT stopped publishing\""
        metric_name         = "ActiveConnectionCount"
        statistic           = "SampleCount"
        threshold           = 1
        comparison_operator = "LessThanThreshold"
        evaluation_periods  = var.nat_silent_alarm_minutes
        treat_missing_data  = "breaching"
      }
    }
  ]...)
}

resource "aws_cloudwatch_metric_alarm" "nat" {
  for_each = local.nat_alarms

  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = var.nat_metric_namespace
  metric_name         = each.value.metric_name
  dimensions          = { AutoScalingGroupName = each.value.group }
  statistic           = each.value.statistic
  period              = 60
  evaluation_periods  = each.value.evaluation_periods
  threshold           = each.value.threshold
  comparison_operator = each.value.comparison_operator
  treat_missing_data  = each.value.treat_missing_data
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

################################################################################
# The deployment's dashboard: which group and EIP serve each zone and whether it is failed over,
# what each NAT carries, the hook's work, every alarm. The runbook starts here.
################################################################################

locals {
  region = data.aws_region.current.id

  # One line per zone of a NAT metric.
  nat_lines = {
    for metric in ["BytesOutToDestination", "BytesInFromDestination", "PacketsOutToDestination", "PacketsInFromDestination", "ActiveConnectionCount", "ConnectionEstablishedCount", "PacketsDropCount", "ErrorPortAllocation", "ConntrackUsePercent", "CheckEndpointsUnreachable"] :
    metric => [for zone, group in local.nat_zones : [var.nat_metric_namespace, metric, "AutoScalingGroupName", group, { label = "${zone} ${metric}" }]]
  }

  zone_rows = join("\n", [for zone, group in local.nat_zones : "| ${zone} | `${group}` | `${var.groups[group].eip_allocation_id}` | `${join("`, `", var.groups[group].route_table_ids)}` |"])

  # The rows' tops: the first row as tall as its zone table, the others 6 units each, no gap between.
  top_height = 3 + length(local.nat_zones)
  row_y      = [for row in range(4) : local.top_height + 6 * row]

  dashboard_widgets = [
    {
      type = "text", x = 0, y = 0, width = 12, height = local.top_height
      properties = {
        markdown = join("\n", [
          "## ${var.name}: NAT egress",
          "| zone | NAT group | its EIP | private route tables |",
          "|---|---|---|---|",
          local.zone_rows,
          "Each zone's instance and where its routes point now: `nat-asg-hook verify` (runbook, \"First, in any incident\"). A zone failed over leaves through a sibling's NAT and EIP: its own NAT's traffic drops to zero and the sibling's rises.",
        ])
      }
    },
    {
      type = "metric", x = 12, y = 0, width = 12, height = local.top_height
      properties = {
        title   = "Zones failed over, zones without their own NAT (each reconcile)"
        region  = local.region
        view    = "timeSeries"
        stat    = "Maximum"
        period  = 60
        metrics = [["NatAsgHook", "ZonesFailedOver"], ["NatAsgHook", "ZonesWithoutOwnNat"]]
      }
    },
    {
      type       = "metric", x = 0, y = local.row_y[0], width = 12, height = 6
      properties = { title = "Bytes out to / in from the internet, per zone (Sum per minute)", region = local.region, view = "timeSeries", stat = "Sum", period = 60, metrics = concat(local.nat_lines.BytesOutToDestination, local.nat_lines.BytesInFromDestination) }
    },
    {
      type       = "metric", x = 12, y = local.row_y[0], width = 12, height = 6
      properties = { title = "Packets out / in, per zone (Sum per minute)", region = local.region, view = "timeSeries", stat = "Sum", period = 60, metrics = concat(local.nat_lines.PacketsOutToDestination, local.nat_lines.PacketsInFromDestination) }
    },
    {
      type       = "metric", x = 0, y = local.row_y[1], width = 8, height = 6
      properties = { title = "Connections: tracked now (Maximum)", region = local.region, view = "timeSeries", stat = "Maximum", period = 60, metrics = local.nat_lines.ActiveConnectionCount }
    },
    {
      type       = "metric", x = 8, y = local.row_y[1], width = 8, height = 6
      properties = { title = "New connections (Sum per minute)", region = local.region, view = "timeSeries", stat = "Sum", period = 60, metrics = local.nat_lines.ConnectionEstablishedCount }
    },
    {
      type = "metric", x = 16, y = local.row_y[1], width = 8, height = 6
      properties = {
        title       = "Connection-tracking use, % (Maximum)"
        region      = local.region
        view        = "timeSeries"
        stat        = "Maximum"
        period      = 60
        metrics     = local.nat_lines.ConntrackUsePercent
        annotations = { horizontal = [{ label = "alarm", value = var.conntrack_alarm_percent }] }
        yAxis       = { left = { min = 0, max = 100 } }
      }
    },
    {
      type       = "metric", x = 0, y = local.row_y[2], width = 12, height = 6
      properties = { title = "Dropped packets, port-allocation errors (Sum per minute)", region = local.region, view = "timeSeries", stat = "Sum", period = 60, metrics = concat(local.nat_lines.PacketsDropCount, local.nat_lines.ErrorPortAllocation) }
    },
    {
      type       = "metric", x = 12, y = local.row_y[2], width = 12, height = 6
      properties = { title = "Check endpoints unreachable (outside trouble), per zone", region = local.region, view = "timeSeries", stat = "Maximum", period = 60, metrics = local.nat_lines.CheckEndpointsUnreachable }
    },
    {
      type = "metric", x = 0, y = local.row_y[3], width = 8, height = 6
      properties = {
        title  = "Hook: invocations and errors"
        region = local.region
        view   = "timeSeries"
        stat   = "Sum"
        period = 60
        metrics = [
          ["NatAsgHook", "Invocations"],
          ["AWS/Lambda", "Errors", "FunctionName", var.name],
          ["NatAsgHook", "AuthorizationErrors"],
        ]
      }
    },
    {
      type = "metric", x = 8, y = local.row_y[3], width = 8, height = 6
      properties = {
        title   = "Hook: cutover duration, ms"
        region  = local.region
        view    = "timeSeries"
        period  = 60
        metrics = [["NatAsgHook", "CutoverDuration", { stat = "p50" }], ["NatAsgHook", "CutoverDuration", { stat = "Maximum" }]]
      }
    },
    {
      type = "alarm", x = 16, y = local.row_y[3], width = 8, height = 6
      properties = {
        title = "Alarms"
        alarms = concat(
          [for alarm in aws_cloudwatch_metric_alarm.this : alarm.arn],
          [aws_cloudwatch_metric_alarm.outside_trouble.arn],
          [for alarm in aws_cloudwatch_metric_alarm.nat : alarm.arn],
        )
      }
    },
  ]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({ widgets = local.dashboard_widgets })
}
