// What a user adapts. Override any of it with `_config+:: { ... }` on top of mixin.libsonnet,
// or, without writing jsonnet, with `python scripts/render_mixin.py --set key=value`.
// Durations are Prometheus durations made of whole units s, m, h, d, w (90s, 15m, 1h30m).
{
  _config+:: {
    // PromQL label matchers selecting the Prometheus scrape job(s) of the exporter, read by
    // ConvocoreCrawlerExporterDown (`up{<selector>} == 0`). The default matches every scrape
    // job this repository ships: convocore-crawler (prometheus.yml, Compose),
    // convocore-crawler-probe and convocore-crawler-exporter (prometheus-sd.yml), and the
    // Prometheus Operator's jobs named after the Services convocore-crawler-exporter and
    // convocore-crawler-exporter-shard.
    exporterSelector: 'job=~"convocore-crawler.*"',

    // ConvocoreCrawlerJobFailed: a job's status is failed for this long.
    jobFailedFor: '1m',

    // ConvocoreCrawlerFailedJobsPastHorizon: failed jobs the workspace totals count but no
    // per-job series shows any more (past the exporter's include_finished_for) for this long.
    failedJobsPastHorizonFor: '15m',

    // ConvocoreCrawlerJobStalled: processing for this whole window without a new page.
    jobStalledAfter: '30m',

    // ConvocoreCrawlerJobHighPageFailureRatio: more than this share (0..1) of the pages a job
    // tried failed, once it tried at least pageFailureMinPages, for pageFailureFor.
    pageFailureRatio: 0.2,
    pageFailureMinPages: 20,
    pageFailureFor: '15m',

    // ConvocoreCrawlerJobEmptyPages (needs page_stats: true): more than this share (0..1) of
    // the pages a job lists are empty, once it lists at least emptyPagesMinPages, for
    // emptyPagesFor.
    emptyPagesRatio: 0.5,
    emptyPagesMinPages: 20,
    emptyPagesFor: '15m',

    // ConvocoreCrawlerWorkspaceCreditsOverBudget: the estimated credits of a workspace's
    // queued and processing jobs exceed its budget for creditsOverBudgetFor. Budgets are in
    // credits (1,000 credits = 1 USD): creditBudget for every workspace without an entry in
    // workspaceCreditBudgets ({ 'ws-123': 20000 }); null to alert only on the listed ones.
    creditBudget: 50000,
    workspaceCreditBudgets: {},
    creditsOverBudgetFor: '5m',

    // ConvocoreCrawlerJobQueuedTooLong: a job stays queued this long.
    jobQueuedFor: '30m',

    // ConvocoreCrawlerAPIUnreachable: the exporter cannot fetch a workspace's jobs this long.
    apiUnreachableFor: '10m',

    // ConvocoreCrawlerDiscoveryFailing: a workspace's job listing (discover: true) fails this
    // long; its discovered jobs are kept as last listed for the exporter's
    // discover_grace_period, then go down, and new jobs go unseen.
    discoveryFailingFor: '15m',

    // ConvocoreCrawlerRateLimited: the API rate-limits the exporter this long.
    rateLimitedFor: '15m',

    // ConvocoreCrawlerDataStale: a job's last successful fetch is older than this.
    dataStaleAfter: '1h',

    // ConvocoreCrawlerExporterDown: Prometheus cannot scrape the exporter this long.
    exporterDownFor: '5m',

    // ConvocoreCrawlerConfigReloadFailed: the exporter refuses its new config this long.
    configReloadFailedFor: '5m',

    // The Grafana dashboard.
    dashboardUid: 'convocore-crawler',
    dashboardTitle: 'Convocore crawler',
    dashboardTags: ['convocore', 'crawler'],
    dashboardRefresh: '1m',
    dashboardTimeFrom: 'now-6h',
  },
}
