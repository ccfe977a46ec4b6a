// The monitoring mixin of convocore-crawler-exporter: alerts, recording rules and a Grafana
// dashboard, in the hidden fields prometheusAlerts, prometheusRules and grafanaDashboards.
// Adapt it with `_config+:: { ... }` (config.libsonnet lists every setting).
(import 'config.libsonnet')
+ (import 'alerts/alerts.libsonnet')
+ (import 'rules/rules.libsonnet')
+ (import 'dashboards/dashboards.libsonnet')
