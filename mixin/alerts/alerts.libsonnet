// The alerts. Every alert has a `severity` label (critical: someone should act now; warning:
// look at it during working hours) and `summary` / `description` annotations. They read the
// recording rules of rules/rules.libsonnet, so load both.
local util = import '../lib/util.libsonnet';

// ' (friendly name)' after a job id, when the exporter knows the job's name.
local jobName =
  '{{ with printf "convocore_crawler_job_info{workspace_id=%q,job_id=%q}" $labels.workspace_id $labels.job_id | query }}'
  + '{{ with . | first | label "name" }} ({{ . }}){{ end }}{{ end }}';

// ': "<failure text>".' when the exporter serves the job's resultError, else what to look up.
local failureText =
  '{{ with printf "convocore_crawler_job_failure_info{workspace_id=%q,job_id=%q}" $labels.workspace_id $labels.job_id | query }}'
  + ': "{{ . | first | label "result_error" }}".'
  + "{{ else }}. Convocore gave no failure text (resultError) for it.{{ end }}";

{
  prometheusAlerts+:: {
    local c = $._config,
    local stalled = util.duration(c, 'jobStalledAfter'),
    groups+: [
      {
        name: 'convocore-crawler.alerts',
        rules: [
          {
            alert: 'ConvocoreCrawlerJobFailed',
            expr: 'convocore_crawler_job_status{status="failed"} == 1',
            'for': util.duration(c, 'jobFailedFor'),
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Convocore crawler job failed.',
              description: util.oneLine(|||
                Job {{ $labels.job_id }}%s
                in workspace {{ $labels.workspace_id }} has failed%s
                Resume or re-create the job, or remove it from the exporter's configuration, to
                clear this alert.
              ||| % [jobName, failureText]),
            },
          },
          // A failed job's ConvocoreCrawlerJobFailed ends when it passes the exporter's
          // include_finished_for (7d by default) and its per-job series go. This one takes
          // over from the totals, which still count it: it stays firing while failed jobs
          // past the horizon remain failed in Convocore, until they are rerun or deleted.
          {
            alert: 'ConvocoreCrawlerFailedJobsPastHorizon',
            expr: |||
              sum by (workspace_id) (
                workspace_id_status:convocore_crawler_workspace_jobs:sum{status="failed"}
              )
              - on (workspace_id)
              (
                count by (workspace_id) (
                  max by (workspace_id, job_id) (convocore_crawler_job_status{status="failed"}) == 1
                )
                or on (workspace_id)
                0 * sum by (workspace_id) (
                  workspace_id_status:convocore_crawler_workspace_jobs:sum{status="failed"}
                )
              )
              > 0
            |||,
            'for': util.duration(c, 'failedJobsPastHorizonFor'),
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Failed Convocore crawler jobs are no longer exported one by one.',
              description: util.oneLine(|||
                {{ $value }} failed job(s) of workspace {{ $labels.workspace_id }} are still failed
                but no longer have per-job series: they were last updated longer ago than the
                exporter's include_finished_for (or max_jobs left them out), so their
                ConvocoreCrawlerJobFailed alerts ended although nobody acted. Rerun or delete them
                in Convocore to resolve this alert; silence it to acknowledge them.
              |||),
            },
          },
          {
            alert: 'ConvocoreCrawlerJobStalled',
            expr: |||
              convocore_crawler_job_status{status="processing"} == 1
              and ignoring (status)
              convocore_crawler_job_status{status="processing"} offset %(window)s == 1
              and ignoring (status)
              changes(convocore_crawler_job_scraped_pages[%(window)s]) == 0
            ||| % { window: stalled },
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Convocore crawler job is processing but makes no progress.',
              description: util.oneLine(|||
                Job {{ $labels.job_id }}%s
                in workspace {{ $labels.workspace_id }} has been processing for at least %s
                without scraping a new page.
              ||| % [jobName, util.words(c, 'jobStalledAfter')]),
            },
          },
          {
            alert: 'ConvocoreCrawlerJobHighPageFailureRatio',
            expr: |||
              workspace_id_job_id:convocore_crawler_job_page_failures:ratio > %s
              and
              (convocore_crawler_job_scraped_pages + convocore_crawler_job_failed_pages) >= %s
            ||| % [util.num(util.ratio(c, 'pageFailureRatio')), util.num(util.amount(c, 'pageFailureMinPages'))],
            'for': util.duration(c, 'pageFailureFor'),
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Many pages of a Convocore crawler job fail.',
              description: util.oneLine(|||
                {{ $value | humanizePercentage }} of the pages that job {{ $labels.job_id }}%s
                in workspace {{ $labels.workspace_id }} tried have failed (more than %s %%).
              ||| % [jobName, util.percent(c, 'pageFailureRatio')]),
            },
          },
          // Needs page_stats: true on the workspace (the exporter then reads each job's pages).
          {
            alert: 'ConvocoreCrawlerJobEmptyPages',
            expr: |||
              workspace_id_job_id:convocore_crawler_job_empty_pages:ratio > %s
              and
              convocore_crawler_job_pages_listed >= %s
            ||| % [util.num(util.ratio(c, 'emptyPagesRatio')), util.num(util.amount(c, 'emptyPagesMinPages'))],
            'for': util.duration(c, 'emptyPagesFor'),
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Most pages of a Convocore crawler job were scraped without content.',
              description: util.oneLine(|||
                {{ $value | humanizePercentage }} of the pages that job {{ $labels.job_id }}%s
                in workspace {{ $labels.workspace_id }} lists are empty (more than %s %%): no text
                was extracted, though they cost credits. The usual cause is a site that renders its
                content with JavaScript; open one of the job's pages in the Convocore dashboard to
                see what was scraped.
              ||| % [jobName, util.percent(c, 'emptyPagesRatio')]),
            },
          },
          {
            alert: 'ConvocoreCrawlerWorkspaceCreditsOverBudget',
            expr: |||
              workspace_id:convocore_crawler_job_estimated_credits_active:sum
              > on (workspace_id)
              workspace_id:convocore_crawler_credit_budget:max
            |||,
            'for': util.duration(c, 'creditsOverBudgetFor'),
            labels: { severity: 'critical' },
            annotations: {
              summary: 'Active Convocore crawler jobs are estimated to cost more than the budget.',
              description: util.oneLine(|||
                The queued and processing crawler jobs of workspace {{ $labels.workspace_id }} are
                estimated to cost {{ $value | humanize }} credits (1,000 credits = 1 USD), more than
                the workspace's budget{{ with printf "workspace_id:convocore_crawler_credit_budget:max{workspace_id=%q}" $labels.workspace_id | query }} of {{ . | first | value | humanize }} credits{{ end }}.
                Budgets are settings of the monitoring mixin (creditBudget, workspaceCreditBudgets),
                rendered into the convocore-crawler-settings rule group.
              |||),
            },
          },
          {
            alert: 'ConvocoreCrawlerJobQueuedTooLong',
            expr: 'convocore_crawler_job_status{status="queued"} == 1',
            'for': util.duration(c, 'jobQueuedFor'),
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Convocore crawler job has been queued for a long time.',
              description: util.oneLine(|||
                Job {{ $labels.job_id }}%s
                in workspace {{ $labels.workspace_id }} has been queued for more than %s
                without starting.
              ||| % [jobName, util.words(c, 'jobQueuedFor')]),
            },
          },
          // One alert per workspace and reason, counting the jobs affected. Rate limiting has
          // its own alert below.
          {
            alert: 'ConvocoreCrawlerAPIUnreachable',
            expr: |||
              count by (workspace_id, reason) (
                convocore_crawler_error_info{reason!="rate_limited"} == 1
                and ignoring (reason)
                convocore_crawler_up == 0
              )
            |||,
            'for': util.duration(c, 'apiUnreachableFor'),
            labels: { severity: 'warning' },
            annotations: {
              summary: 'The exporter cannot fetch Convocore crawler jobs from the API.',
              description: util.oneLine(|||
                For %s the exporter has failed to fetch {{ $value }} job(s) of workspace
                {{ $labels.workspace_id }} from the Convocore API, reason {{ $labels.reason }}
                (unauthorized/forbidden: check the workspace secret; not_found: check the job ids;
                timeout, connection, server_error, deadline: the API or the network; invalid_response:
                the API answered something that is not a job).
              ||| % util.words(c, 'apiUnreachableFor')),
            },
          },
          // The listing of a workspace with discover: true. Its jobs stay up through a blip
          // (the exporter's discover_grace_period), so this is the alert that tells of a
          // listing failing for long; the reason comes from the info metric.
          {
            alert: 'ConvocoreCrawlerDiscoveryFailing',
            expr: 'convocore_crawler_discovery_up == 0',
            'for': util.duration(c, 'discoveryFailingFor'),
            labels: { severity: 'warning' },
            annotations: {
              summary: 'The exporter cannot list the Convocore crawler jobs of a workspace.',
              description: util.oneLine(|||
                For %s the job listing of workspace {{ $labels.workspace_id }} has failed at
                {{ $labels.instance }}{{ with printf "convocore_crawler_discovery_error_info{instance=%%q,workspace_id=%%q}" $labels.instance $labels.workspace_id | query }}, reason {{ . | first | label "reason" }}{{ end }}.
                Its discovered jobs are kept as last listed for the exporter's
                discover_grace_period, then go down; new jobs are not found meanwhile.
              ||| % util.words(c, 'discoveryFailingFor')),
            },
          },
          // 429 answers counted by the exporter, jobs down for that reason, or a workspace in
          // rate-limit backoff (during which the exporter sends it no requests at all).
          {
            alert: 'ConvocoreCrawlerRateLimited',
            expr: |||
              sum by (workspace_id) (
                increase(convocore_crawler_api_requests_total{code="429"}[5m])
              ) > 0
              or
              count by (workspace_id) (convocore_crawler_error_info{reason="rate_limited"} == 1)
              or
              max by (workspace_id) (convocore_crawler_backoff_until_timestamp_seconds) > time()
            |||,
            'for': util.duration(c, 'rateLimitedFor'),
            labels: { severity: 'warning' },
            annotations: {
              summary: 'The Convocore API is rate-limiting the exporter.',
              description: util.oneLine(|||
                For %s the Convocore API has been answering 429 Too Many Requests to the
                exporter's requests for workspace {{ $labels.workspace_id }}; jobs it could not fetch
                show up 0 with reason rate_limited and their data ages. Scrape less often or export
                fewer jobs.
              ||| % util.words(c, 'rateLimitedFor')),
            },
          },
          {
            alert: 'ConvocoreCrawlerDataStale',
            expr: 'time() - convocore_crawler_last_success_timestamp_seconds > %d'
                  % util.seconds(c, 'dataStaleAfter'),
            labels: { severity: 'critical' },
            annotations: {
              summary: 'Convocore crawler job data is stale.',
              description: util.oneLine(|||
                The last successful fetch of job {{ $labels.job_id }} in workspace
                {{ $labels.workspace_id }} from the Convocore API was {{ $value | humanizeDuration }}
                ago (more than %s); its metrics show old data.
              ||| % util.words(c, 'dataStaleAfter')),
            },
          },
          {
            alert: 'ConvocoreCrawlerExporterDown',
            expr: 'up{%s} == 0' % util.text(c, 'exporterSelector'),
            'for': util.duration(c, 'exporterDownFor'),
            labels: { severity: 'critical' },
            annotations: {
              summary: 'Prometheus cannot scrape the Convocore crawler exporter.',
              description: util.oneLine(|||
                Prometheus has failed to scrape {{ $labels.instance }} (scrape job
                {{ $labels.job }}) for %s; no crawler job is being watched there.
              ||| % util.words(c, 'exporterDownFor')),
            },
          },
          {
            alert: 'ConvocoreCrawlerConfigReloadFailed',
            expr: 'convocore_crawler_config_last_reload_successful == 0',
            'for': util.duration(c, 'configReloadFailedFor'),
            labels: { severity: 'warning' },
            annotations: {
              summary: 'The Convocore crawler exporter refused its new configuration.',
              description: util.oneLine(|||
                The last configuration reload of the exporter at {{ $labels.instance }} failed; it
                keeps serving the previous configuration. Its log, or `--config.check` run on the
                file, tells what is wrong with it.
              |||),
            },
          },
        ],
      },
    ],
  },
}
