// Recording rules shared by the alerts and the dashboard. Names follow the Prometheus
// convention level:metric:operations, the level listing the labels the result is kept by:
//   workspace_id_job_id:...  one series per job (the scrape's instance and job labels stay too)
//   workspace_id:...         one series per workspace
local util = import '../lib/util.libsonnet';

{
  prometheusRules+:: {
    local c = $._config,
    local default = util.optionalAmount(c, 'creditBudget'),
    local budgets = util.amounts(c, 'workspaceCreditBudgets'),
    // Settings: the credit budget of each workspace, read by the
    // ConvocoreCrawlerWorkspaceCreditsOverBudget alert. Constant series, not data from the
    // exporter (which never serves this name): the default budget without a workspace_id
    // label, then one per workspace that has its own.
    local settings = {
      name: 'convocore-crawler-settings',
      rules:
        (if default == null then [] else [
           { record: 'convocore_crawler_credit_budget', expr: 'vector(%s)' % util.num(default) },
         ])
        + [
          {
            record: 'convocore_crawler_credit_budget',
            expr: 'vector(%s)' % util.num(budgets[workspace]),
            labels: { workspace_id: workspace },
          }
          for workspace in std.objectFields(budgets)
        ],
    },
    // Left out when it holds no budget at all (creditBudget null, no workspace budgets).
    groups+: (if std.length(settings.rules) > 0 then [settings] else []) + [
      {
        name: 'convocore-crawler.rules',
        rules: [
          // Share of the page limit scraped so far, 0..1. A job that finishes before reaching
          // its limit (the site had fewer pages) stays below 1; its status tells that it is
          // done. Jobs without a positive page limit have no progress.
          {
            record: 'workspace_id_job_id:convocore_crawler_job_progress:ratio',
            expr: |||
              clamp(
                convocore_crawler_job_scraped_pages / (convocore_crawler_job_page_limit > 0),
                0, 1
              )
            |||,
          },
          // Failed pages out of all pages attempted (scraped + failed), 0..1. Absent until the
          // job has attempted a page.
          {
            record: 'workspace_id_job_id:convocore_crawler_job_page_failures:ratio',
            expr: |||
              convocore_crawler_job_failed_pages
              /
              ((convocore_crawler_job_scraped_pages + convocore_crawler_job_failed_pages) > 0)
            |||,
          },
          // Empty pages out of the pages the job lists, 0..1 (an empty page: not failed and no
          // markdown; the exact rule is in the HELP of convocore_crawler_job_empty_pages). Only
          // for workspaces with page_stats: true; absent until the job lists a page.
          {
            record: 'workspace_id_job_id:convocore_crawler_job_empty_pages:ratio',
            expr: |||
              convocore_crawler_job_empty_pages
              /
              (convocore_crawler_job_pages_listed > 0)
            |||,
          },
          // Pages the crawler scraped per second by the pages' own clock: pages newly listed
          // over 15 minutes divided by how far the latest scrapedAt moved in them. Unlike
          // deriv5m below it does not depend on when the exporter reads the pages
          // (page_stats_interval, 5m by default, hence the 15m window); absent while no new
          // page is listed. Multiply by 60 for pages per minute.
          {
            record: 'workspace_id_job_id:convocore_crawler_job_pages_listed:scraped_rate15m',
            expr: |||
              clamp_min(
                  delta(convocore_crawler_job_pages_listed[15m])
                /
                  (delta(convocore_crawler_job_last_page_scraped_timestamp_seconds[15m]) > 0),
                0
              )
            |||,
          },
          // Pages scraped per second, fitted over 5 minutes (deriv: the page count is a gauge
          // read from the API, not a counter). Multiply by 60 for pages per minute. Never
          // negative: a count that went down (a resumed job starting over) is not work done.
          {
            record: 'workspace_id_job_id:convocore_crawler_job_scraped_pages:deriv5m',
            expr: 'clamp_min(deriv(convocore_crawler_job_scraped_pages[5m]), 0)',
          },
          // The workspace and agent totals the exporter serves, over every job a workspace
          // lists (those past include_finished_for included), summed over the exporters
          // serving them: each replica of a sharded setup (--total-shards) totals its own jobs.
          // (Two replicas of the same shard, an HA pair, would count twice: see alerting.md.)
          {
            record: 'workspace_id_status:convocore_crawler_workspace_jobs:sum',
            expr: 'sum by (workspace_id, status) (convocore_crawler_workspace_jobs)',
          },
          {
            record: 'workspace_id:convocore_crawler_workspace_estimated_credits:sum',
            expr: 'sum by (workspace_id) (convocore_crawler_workspace_estimated_credits)',
          },
          {
            record: 'workspace_id_agent_id_status:convocore_crawler_agent_jobs:sum',
            expr: 'sum by (workspace_id, agent_id, status) (convocore_crawler_agent_jobs)',
          },
          {
            record: 'workspace_id_agent_id:convocore_crawler_agent_estimated_credits:sum',
            expr: 'sum by (workspace_id, agent_id) (convocore_crawler_agent_estimated_credits)',
          },
          // Jobs per workspace that are queued or processing. Each job counts once even when
          // several exporters (an HA pair, or one target per job via /probe) serve it: active
          // jobs always have per-job series (include_finished_for ages finished jobs only).
          // A workspace the totals know whose jobs have all aged out has 0.
          {
            record: 'workspace_id:convocore_crawler_jobs_active:sum',
            expr: |||
              sum by (workspace_id) (
                max by (workspace_id, job_id) (
                  convocore_crawler_job_status{status=~"queued|processing"}
                )
              )
              or on (workspace_id)
              0 * workspace_id:convocore_crawler_workspace_estimated_credits:sum
            |||,
          },
          // Estimated credits of the queued or processing jobs of each workspace, each job once
          // (what the credit budget holds); 0 as above.
          {
            record: 'workspace_id:convocore_crawler_job_estimated_credits_active:sum',
            expr: |||
              sum by (workspace_id) (
                  max by (workspace_id, job_id) (convocore_crawler_job_estimated_credits)
                * on (workspace_id, job_id)
                  max by (workspace_id, job_id) (
                    convocore_crawler_job_status{status=~"queued|processing"}
                  )
              )
              or on (workspace_id)
              0 * workspace_id:convocore_crawler_workspace_estimated_credits:sum
            |||,
          },
          // The credit budget in force for each workspace that has jobs: its own entry in the
          // settings group above, else the default entry (the one without a workspace_id).
          {
            record: 'workspace_id:convocore_crawler_credit_budget:max',
            expr: |||
              max by (workspace_id) (convocore_crawler_credit_budget{workspace_id!=""})
              or on (workspace_id)
              (
                  0 * workspace_id:convocore_crawler_job_estimated_credits_active:sum
                + on () group_left ()
                  max(convocore_crawler_credit_budget{workspace_id=""})
              )
            |||,
          },
        ],
      },
    ],
  },
}
