// The Grafana dashboard: a function of the mixin's _config.
//
// Every panel follows the same rules: a description, a unit, the `$datasource`,
// `$workspace_id` and `$job_id` variables, and `$__rate_interval` as the window of every
// rate. The queries use the recording rules where one exists, so the dashboard and the
// alerts agree.
local util = import '../lib/util.libsonnet';

local datasource = { type: 'prometheus', uid: '${datasource}' };
local job = 'workspace_id=~"$workspace_id", job_id=~"$job_id"';
local workspace = 'workspace_id=~"$workspace_id"';

// One series per job, carrying the job's friendly name from the info metric. Several
// exporters serving the same job (an HA pair) collapse into one line.
local named(expr) = |||
  max by (workspace_id, job_id, name) (
    %s
    * on (instance, job, workspace_id, job_id) group_left (name)
    convocore_crawler_job_info
  )
||| % expr;
// (The text block ends with a newline the query does not need.)
local namedQuery(expr) = std.rstripChars(named(expr), '\n');

// A field override drawing query `refId` as a dashed line without fill (a reference line
// such as a budget, or a second measure beside the first).
local dashed(refId) = {
  matcher: { id: 'byFrameRefID', options: refId },
  properties: [
    { id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } },
    { id: 'custom.fillOpacity', value: 0 },
  ],
};

local target(refId, expr, legend='') = {
  refId: refId,
  datasource: datasource,
  expr: expr,
  range: true,
  legendFormat: if legend == '' then '__auto' else legend,
};

local instantTarget(refId, expr) = {
  refId: refId,
  datasource: datasource,
  expr: expr,
  instant: true,
  range: false,
  format: 'table',
};

local stat(title, description, expr, unit, color) = {
  type: 'stat',
  title: title,
  description: description,
  datasource: datasource,
  targets: [target('A', expr, title)],
  fieldConfig: {
    defaults: {
      unit: unit,
      decimals: 0,
      color: { mode: 'fixed', fixedColor: color },
      thresholds: { mode: 'absolute', steps: [{ color: color, value: null }] },
    },
    overrides: [],
  },
  options: {
    reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
    colorMode: 'value',
    graphMode: 'area',
    textMode: 'value',
    justifyMode: 'auto',
    orientation: 'auto',
    showPercentChange: false,
    percentChangeColorMode: 'standard',
    wideLayout: true,
  },
};

local timeseries(title, description, targets, unit, min=0, max=null, stack=false, overrides=[]) = {
  type: 'timeseries',
  title: title,
  description: description,
  datasource: datasource,
  targets: targets,
  fieldConfig: {
    defaults: {
      unit: unit,
      custom: {
        drawStyle: 'line',
        lineWidth: 1,
        fillOpacity: 10,
        showPoints: 'never',
        spanNulls: false,
        stacking: { mode: if stack then 'normal' else 'none', group: 'A' },
      },
    } + (if min != null then { min: min } else {})
    + (if max != null then { max: max } else {}),
    overrides: overrides,
  },
  options: {
    legend: {
      showLegend: true,
      displayMode: 'table',
      placement: 'right',
      calcs: ['lastNotNull'],
    },
    tooltip: { mode: 'multi', sort: 'desc' },
  },
};

local column(name, unit, cellOptions=null) = {
  matcher: { id: 'byName', options: name },
  properties: [{ id: 'unit', value: unit }]
              + (if cellOptions == null then [] else [{ id: 'custom.cellOptions', value: cellOptions }]),
};

local statusColors = [
  ['queued', 'blue'],
  ['processing', 'yellow'],
  ['completed', 'green'],
  ['failed', 'red'],
  ['cancelled', 'text'],
];

// One row per job; each column is one instant query, merged on workspace_id and job_id.
local jobsTable(c) =
  local perJob = 'max by (workspace_id, job_id)';
  local failureRed = util.ratio(c, 'pageFailureRatio');
  local columns = [
    // [refId, header (null: a label column), expression]
    ['A', null, 'max by (workspace_id, job_id, name) (convocore_crawler_job_info{%s})' % job],
    ['B', null, 'max by (workspace_id, job_id, status) (convocore_crawler_job_status{%s} == 1)' % job],
    ['C', 'Progress', '%s (workspace_id_job_id:convocore_crawler_job_progress:ratio{%s})' % [perJob, job]],
    ['D', 'Scraped pages', '%s (convocore_crawler_job_scraped_pages{%s})' % [perJob, job]],
    ['E', 'Page limit', '%s (convocore_crawler_job_page_limit{%s})' % [perJob, job]],
    ['F', 'Failed pages', '%s (convocore_crawler_job_failed_pages{%s})' % [perJob, job]],
    ['G', 'Failure ratio', '%s (workspace_id_job_id:convocore_crawler_job_page_failures:ratio{%s})' % [perJob, job]],
    ['H', 'Pages/min', '60 * %s (workspace_id_job_id:convocore_crawler_job_scraped_pages:deriv5m{%s})' % [perJob, job]],
    ['I', 'Credits/page', '%s (convocore_crawler_job_credits_per_page{%s})' % [perJob, job]],
    ['J', 'Estimated credits', '%s (convocore_crawler_job_estimated_credits{%s})' % [perJob, job]],
    ['K', 'Fetched', '%s (convocore_crawler_up{%s})' % [perJob, job]],
  ];
  local valueColumns = [col for col in columns if col[1] != null];
  local order = ['workspace_id', 'job_id', 'name', 'status'] + ['Value #' + col[0] for col in valueColumns];
  {
    type: 'table',
    title: 'Jobs',
    description: std.join(' ', [
      'Every crawler job the exporter serves, as of the end of the time range. Progress',
      'is scraped pages over the page limit (a job that finishes before its limit stays',
      'below 100%); failure ratio is failed pages over all pages tried; pages/min is the',
      'scraping speed over the last 5 minutes; estimated credits is what Convocore',
      'expects the job to cost (1,000 credits = 1 USD). Fetched is no when the exporter',
      'could not get the job from the API in its last scrape (see Exporter health).',
    ]),
    datasource: datasource,
    targets: [instantTarget(col[0], col[2]) for col in columns],
    fieldConfig: {
      defaults: {
        unit: 'none',
        custom: {
          align: 'auto',
          filterable: true,
          inspect: false,
          cellOptions: { type: 'auto' },
        },
      },
      overrides: [
        column('Progress', 'percentunit', { type: 'gauge', mode: 'basic' }),
        column('Scraped pages', 'none'),
        column('Page limit', 'none'),
        column('Failed pages', 'none'),
        column('Failure ratio', 'percentunit', { type: 'color-text' }),
        column('Pages/min', 'suffix:pages/min'),
        column('Credits/page', 'suffix:credits'),
        column('Estimated credits', 'suffix:credits'),
        {
          matcher: { id: 'byName', options: 'Status' },
          properties: [
            {
              id: 'mappings',
              value: [{
                type: 'value',
                options: {
                  [statusColors[i][0]]: { color: statusColors[i][1], index: i }
                  for i in std.range(0, std.length(statusColors) - 1)
                },
              }],
            },
            { id: 'custom.cellOptions', value: { type: 'color-text' } },
          ],
        },
        {
          matcher: { id: 'byName', options: 'Fetched' },
          properties: [
            { id: 'unit', value: 'none' },
            {
              id: 'mappings',
              value: [{
                type: 'value',
                options: {
                  '0': { text: 'no', color: 'red', index: 0 },
                  '1': { text: 'yes', color: 'green', index: 1 },
                },
              }],
            },
            { id: 'custom.cellOptions', value: { type: 'color-text' } },
          ],
        },
        // Red from the ConvocoreCrawlerJobHighPageFailureRatio threshold, orange from half.
        {
          matcher: { id: 'byName', options: 'Failure ratio' },
          properties: [{
            id: 'thresholds',
            value: {
              mode: 'absolute',
              steps: [
                { color: 'green', value: null },
                { color: 'orange', value: failureRed / 2 },
                { color: 'red', value: failureRed },
              ],
            },
          }],
        },
      ],
    },
    options: { showHeader: true, cellHeight: 'sm', sortBy: [], frameIndex: 0 },
    transformations: [
      { id: 'merge', options: {} },
      {
        id: 'organize',
        options: {
          excludeByName: { Time: true, 'Value #A': true, 'Value #B': true },
          indexByName: { [order[i]]: i for i in std.range(0, std.length(order) - 1) },
          renameByName: { ['Value #' + col[0]]: col[1] for col in valueColumns } + {
            workspace_id: 'Workspace',
            job_id: 'Job',
            name: 'Name',
            status: 'Status',
          },
        },
      },
    ],
  };

// A table of instant queries merged on their labels: `columns` are [refId, header (null: the
// query only brings its labels), expression]; `labels` are the label columns, in order, by
// their headers.
local mergedTable(title, description, columns, labels, overrides=[]) =
  local valueColumns = [col for col in columns if col[1] != null];
  {
    type: 'table',
    title: title,
    description: description,
    datasource: datasource,
    targets: [instantTarget(col[0], col[2]) for col in columns],
    fieldConfig: {
      defaults: {
        unit: 'none',
        custom: {
          align: 'auto',
          filterable: true,
          inspect: false,
          cellOptions: { type: 'auto' },
        },
      },
      overrides: overrides,
    },
    options: { showHeader: true, cellHeight: 'sm', sortBy: [], frameIndex: 0 },
    transformations: [
      { id: 'merge', options: {} },
      {
        id: 'organize',
        options: {
          excludeByName: { Time: true } + {
            ['Value #' + col[0]]: true
            for col in columns
            if col[1] == null
          },
          indexByName: { [labels[i][0]]: i for i in std.range(0, std.length(labels) - 1) } + {
            ['Value #' + valueColumns[i][0]]: std.length(labels) + i
            for i in std.range(0, std.length(valueColumns) - 1)
          },
          renameByName: { ['Value #' + col[0]]: col[1] for col in valueColumns } + {
            [label[0]]: label[1]
            for label in labels
          },
        },
      },
    ],
  };

// The failed jobs of the selection, with the failure text the exporter serves for each.
local isFailed = '(convocore_crawler_job_status{status="failed", %s} == 1)' % job;
local failedTable = mergedTable(
  'Why jobs failed',
  std.join(' ', [
    'Every failed job of the selection with its failure text: the resultError Convocore',
    'gives, as the exporter serves it (one line, at most 300 characters, the workspace',
    'secret replaced by <redacted>). Empty when Convocore gave none. The',
    'ConvocoreCrawlerJobFailed alert quotes the same text.',
  ]),
  [
    ['A', null, 'max by (workspace_id, job_id, name) (convocore_crawler_job_info{%s} and on (workspace_id, job_id) %s)' % [job, isFailed]],
    ['B', null, 'max by (workspace_id, job_id, result_error) (convocore_crawler_job_failure_info{%s} and on (workspace_id, job_id) %s)' % [job, isFailed]],
    ['C', 'Failed pages', 'max by (workspace_id, job_id) (convocore_crawler_job_failed_pages{%s} and on (workspace_id, job_id) %s)' % [job, isFailed]],
  ],
  [['workspace_id', 'Workspace'], ['job_id', 'Job'], ['name', 'Name'], ['result_error', 'Failure text']],
);

// The agents' totals (convocore_crawler_agent_*), over every job the selected workspaces
// list: a job counts once for every agent it feeds.
local agentJobs(statuses) = std.rstripChars(|||
  sum by (agent_id) (
    workspace_id_agent_id_status:convocore_crawler_agent_jobs:sum{status=~"%s", %s}
  )
||| % [statuses, workspace], '\n');
local agentCredits = std.rstripChars(|||
  sum by (agent_id) (
    workspace_id_agent_id:convocore_crawler_agent_estimated_credits:sum{%s}
  )
||| % workspace, '\n');

local agentsTable = mergedTable(
  'Agents',
  std.join(' ', [
    'One row per agent whose knowledge base the selected workspaces\' jobs feed (toAgentIds,',
    'else toAgentId), from the exporter\'s agent totals over every job they list (those past',
    'include_finished_for included): how many jobs feed it, how many of them are active',
    '(queued or processing) or failed, and their estimated credits (1,000 credits = 1 USD).',
    'A job feeding two agents counts for both.',
  ]),
  [
    ['A', 'Jobs', agentJobs('.*')],
    ['B', 'Active jobs', agentJobs('queued|processing')],
    ['C', 'Failed jobs', agentJobs('failed')],
    ['D', 'Estimated credits', agentCredits],
  ],
  [['agent_id', 'Agent']],
  [column('Estimated credits', 'suffix:credits')],
);

local row(title) = { row: { type: 'row', title: title, collapsed: false, panels: [] } };
local place(panel, w, h) = { panel: panel, w: w, h: h };

// Panel ids and grid positions, handed out row after row, 24 columns wide: a panel that does
// not fit beside the previous one starts a new line; a row starts a new line of its own.
local layout(items) =
  local step(state, item) =
    if std.objectHas(item, 'row') then
      local y = if state.x > 0 then state.y + state.rowHeight else state.y;
      state {
        panels+: [item.row { id: state.id, gridPos: { h: 1, w: 24, x: 0, y: y } }],
        id: state.id + 1,
        x: 0,
        y: y + 1,
        rowHeight: 0,
      }
    else
      local wrap = state.x + item.w > 24;
      local x = if wrap then 0 else state.x;
      local y = if wrap then state.y + state.rowHeight else state.y;
      state {
        panels+: [item.panel { id: state.id, gridPos: { h: item.h, w: item.w, x: x, y: y } }],
        id: state.id + 1,
        x: x + item.w,
        y: y,
        rowHeight: std.max(if wrap then 0 else state.rowHeight, item.h),
      };
  std.foldl(step, items, { panels: [], id: 1, x: 0, y: 0, rowHeight: 0 }).panels;

local needsPageStats =
  ' Only for workspaces with page_stats: true, whose jobs\' pages lists the exporter reads.';

local items(c) = [
  row('Jobs'),
  place(stat(
    'Active jobs',
    'Queued and processing jobs in the selected workspaces (recording rule '
    + 'workspace_id:convocore_crawler_jobs_active:sum).',
    'sum(workspace_id:convocore_crawler_jobs_active:sum{%s})' % workspace,
    'none',
    'blue',
  ), 4, 4),
  place(stat(
    'Failed jobs',
    'Failed jobs of the selected workspaces, over every job they list (those past the '
    + 'exporter\'s include_finished_for included), from the workspace totals. Each one '
    + 'raises ConvocoreCrawlerJobFailed while it has per-job series, then counts in '
    + 'ConvocoreCrawlerFailedJobsPastHorizon until it is rerun or deleted.',
    'sum(workspace_id_status:convocore_crawler_workspace_jobs:sum{status="failed", %s})' % workspace,
    'none',
    'red',
  ), 4, 4),
  place(stat(
    'All jobs',
    'Every job the selected workspaces list, in any status, from the workspace totals '
    + '(those past the exporter\'s include_finished_for included).',
    'sum(workspace_id_status:convocore_crawler_workspace_jobs:sum{%s})' % workspace,
    'none',
    'green',
  ), 4, 4),
  place(stat(
    'Estimated credits',
    'What every job the selected workspaces list is estimated to cost, in Convocore '
    + 'credits (1,000 credits = 1 USD), from the workspace totals.',
    'sum(workspace_id:convocore_crawler_workspace_estimated_credits:sum{%s})' % workspace,
    'suffix:credits',
    'purple',
  ), 4, 4),
  place(stat(
    'Estimated credits of active jobs',
    'What the queued and processing jobs of the selected workspaces are estimated '
    + 'to cost, in Convocore credits (1,000 credits = 1 USD). The '
    + 'ConvocoreCrawlerWorkspaceCreditsOverBudget alert compares this, per workspace, '
    + 'with the budget set in the convocore-crawler-settings rule group.',
    'sum(workspace_id:convocore_crawler_job_estimated_credits_active:sum{%s})' % workspace,
    'suffix:credits',
    'purple',
  ), 4, 4),
  place(stat(
    'Jobs not fetched',
    'Jobs of the selection that the exporter could not fetch from the Convocore '
    + 'API in its last scrape (convocore_crawler_up is 0). Exporter health shows why.',
    'sum(1 - max by (workspace_id, job_id) (convocore_crawler_up{%s}))' % job,
    'none',
    'orange',
  ), 4, 4),
  place(jobsTable(c), 24, 10),
  place(failedTable, 24, 6),
  place(timeseries(
    'Progress',
    'Scraped pages as a share of each job\'s page limit (recording rule '
    + 'workspace_id_job_id:convocore_crawler_job_progress:ratio). A line that stays '
    + 'flat while the job is processing is a stalled job.',
    [target('A', namedQuery('workspace_id_job_id:convocore_crawler_job_progress:ratio{%s}' % job), '{{job_id}} {{name}}')],
    'percentunit',
    max=1,
  ), 12, 8),
  place(timeseries(
    'Pages scraped per minute',
    'How fast each job scrapes pages: the slope of its scraped page count over the '
    + 'panel\'s rate interval, in pages per minute. Zero for jobs that are finished, '
    + 'queued or stalled.',
    [target(
      'A',
      namedQuery('clamp_min(60 * deriv(convocore_crawler_job_scraped_pages{%s}[$__rate_interval]), 0)' % job),
      '{{job_id}} {{name}}',
    )],
    'suffix:pages/min',
  ), 12, 8),
  place(timeseries(
    'Page failure ratio',
    'Failed pages as a share of all pages each job has tried (recording rule '
    + 'workspace_id_job_id:convocore_crawler_job_page_failures:ratio). The '
    + 'ConvocoreCrawlerJobHighPageFailureRatio alert fires above %s%% once a job has '
      % util.percent(c, 'pageFailureRatio')
    + 'tried %s pages.' % util.num(util.amount(c, 'pageFailureMinPages')),
    [target(
      'A',
      namedQuery('workspace_id_job_id:convocore_crawler_job_page_failures:ratio{%s}' % job),
      '{{job_id}} {{name}}',
    )],
    'percentunit',
    max=1,
  ), 12, 8),
  place(timeseries(
    'Estimated credits of active jobs by workspace',
    'Per workspace, what its queued and processing jobs are estimated to cost in '
    + 'Convocore credits (solid), and the budget that the '
    + 'ConvocoreCrawlerWorkspaceCreditsOverBudget alert compares it with (dashed; set '
    + 'in the convocore-crawler-settings rule group).',
    [
      target('A', 'workspace_id:convocore_crawler_job_estimated_credits_active:sum{%s}' % workspace, '{{workspace_id}}'),
      target('B', 'workspace_id:convocore_crawler_credit_budget:max{%s}' % workspace, '{{workspace_id}} budget'),
    ],
    'suffix:credits',
    overrides=[dashed('B')],
  ), 12, 8),
  place(timeseries(
    'Active jobs by workspace',
    'Queued and processing jobs per workspace (recording rule '
    + 'workspace_id:convocore_crawler_jobs_active:sum); each job counts once even '
    + 'when several exporters serve it.',
    [target('A', 'workspace_id:convocore_crawler_jobs_active:sum{%s}' % workspace, '{{workspace_id}}')],
    'none',
  ), 12, 8),
  place(timeseries(
    'Jobs by status',
    'Every job the selected workspaces list, by status, from the exporter\'s workspace '
    + 'totals (those past include_finished_for included), stacked.',
    [target(
      'A',
      'sum by (status) (workspace_id_status:convocore_crawler_workspace_jobs:sum{%s})' % workspace,
      '{{status}}',
    )],
    'none',
    stack=true,
  ), 12, 8),

  // The jobs grouped by the agents they feed.
  row('Agents'),
  place(agentsTable, 24, 8),
  place(timeseries(
    'Active jobs by agent',
    'Queued and processing jobs feeding each agent, from the exporter\'s agent totals; a '
    + 'job feeding two agents counts for both.',
    [target('A', agentJobs('queued|processing'), '{{agent_id}}')],
    'none',
  ), 12, 8),
  place(timeseries(
    'Estimated credits by agent',
    'What the jobs feeding each agent are estimated to cost, in Convocore credits (1,000 '
    + 'credits = 1 USD), from the exporter\'s agent totals over every job the selected '
    + 'workspaces list; a job feeding two agents counts for both.',
    [target('A', agentCredits, '{{agent_id}}')],
    'suffix:credits',
  ), 12, 8),

  // What the scraped pages hold, from the page statistics (workspaces with page_stats).
  row('Content'),
  place(timeseries(
    'Empty pages',
    'Share of the pages each job lists that are empty: not failed, and no markdown '
    + 'was extracted (recording rule '
    + 'workspace_id_job_id:convocore_crawler_job_empty_pages:ratio). A high share '
    + 'usually means a site rendered with JavaScript; the '
    + 'ConvocoreCrawlerJobEmptyPages alert fires above %s%% once a job lists %s pages.'
      % [util.percent(c, 'emptyPagesRatio'), util.num(util.amount(c, 'emptyPagesMinPages'))]
    + needsPageStats,
    [target(
      'A',
      namedQuery('workspace_id_job_id:convocore_crawler_job_empty_pages:ratio{%s}' % job),
      '{{job_id}} {{name}}',
    )],
    'percentunit',
    max=1,
  ), 8, 8),
  place(timeseries(
    'Content volume',
    'Characters of markdown (solid) and of HTML (dashed) in the pages each job '
    + 'lists, summed. Markdown is the text the crawler extracted; HTML that grows '
    + 'without markdown is pages scraped without content.' + needsPageStats,
    [
      target('A', namedQuery('convocore_crawler_job_markdown_chars{%s}' % job), '{{job_id}} {{name}} markdown'),
      target('B', namedQuery('convocore_crawler_job_html_chars{%s}' % job), '{{job_id}} {{name}} HTML'),
    ],
    'short',
    overrides=[dashed('B')],
  ), 8, 8),
  place(timeseries(
    'Pages per minute (scrapedAt)',
    'How fast each job scrapes pages by the pages\' own scrapedAt times: pages newly '
    + 'listed over 15 minutes divided by how far the latest scrapedAt moved (recording '
    + 'rule workspace_id_job_id:convocore_crawler_job_pages_listed:scraped_rate15m), '
    + 'so it does not depend on how often the exporter reads the pages. No line while '
    + 'a job adds no page.' + needsPageStats,
    [target(
      'A',
      namedQuery('60 * workspace_id_job_id:convocore_crawler_job_pages_listed:scraped_rate15m{%s}' % job),
      '{{job_id}} {{name}}',
    )],
    'suffix:pages/min',
  ), 8, 8),

  row('Exporter health'),
  place(timeseries(
    'Jobs by fetch outcome',
    'Per workspace, how many jobs the exporter fetched from the Convocore API in '
    + 'each scrape (ok) and, for those it could not, why: unauthorized or forbidden '
    + '(the workspace secret), not_found (the job id), rate_limited, timeout, '
    + 'connection, server_error, deadline (the scrape ran out of time), '
    + 'invalid_response.',
    [target(
      'A',
      std.join('\n', [
        'label_replace(sum by (workspace_id) (max by (workspace_id, job_id) (convocore_crawler_up{%s})), "reason", "ok", "", "")' % job,
        'or',
        'count by (workspace_id, reason) (max by (workspace_id, job_id, reason) (convocore_crawler_error_info{%s}))' % job,
      ]),
      '{{workspace_id}} {{reason}}',
    )],
    'none',
    stack=true,
  ), 12, 8),
  place(timeseries(
    'Data age',
    'Time since each job was last fetched successfully from the API. It grows '
    + 'while the API cannot be reached; the ConvocoreCrawlerDataStale alert fires '
    + 'past %s.' % util.words(c, 'dataStaleAfter'),
    [target(
      'A',
      'min by (workspace_id, job_id) (time() - convocore_crawler_last_success_timestamp_seconds{%s})' % job,
      '{{workspace_id}}/{{job_id}}',
    )],
    's',
  ), 12, 8),
  place(timeseries(
    'API requests by status code',
    'HTTP requests the exporter makes to the Convocore API per second, by status '
    + 'code (error: no answer at all). 429 means Convocore is rate-limiting the '
    + 'exporter.',
    [target(
      'A',
      'sum by (workspace_id, code) (rate(convocore_crawler_api_requests_total{%s}[$__rate_interval]))' % workspace,
      '{{workspace_id}} {{code}}',
    )],
    'reqps',
    stack=true,
  ), 8, 8),
  place(timeseries(
    'API request latency',
    'How long the Convocore API takes to answer the exporter: median, 95th and '
    + '99th percentile over the panel\'s rate interval, from the exporter\'s request '
    + 'duration histogram.',
    [
      target(
        q[0],
        'histogram_quantile(%s, sum by (workspace_id, le) (rate(convocore_crawler_api_request_duration_seconds_bucket{%s}[$__rate_interval])))' % [q[1], workspace],
        '{{workspace_id}} p%s' % q[2],
      )
      for q in [['A', '0.5', '50'], ['B', '0.95', '95'], ['C', '0.99', '99']]
    ],
    's',
  ), 8, 8),
  place(timeseries(
    'Scrape duration',
    'How long each exporter took to answer Prometheus\'s scrape, fetching every '
    + 'job. It should stay well below the scrape timeout; jobs not fetched in time '
    + 'show as deadline under Jobs by fetch outcome.',
    [target('A', 'max by (instance) (convocore_crawler_scrape_duration_seconds)', '{{instance}}')],
    's',
  ), 8, 8),
];

local labelValues(name, label, query) = {
  type: 'query',
  name: name,
  label: label,
  datasource: datasource,
  query: { query: query, refId: 'PrometheusVariableQueryEditor-VariableQuery' },
  refresh: 2,
  sort: 1,
  multi: true,
  includeAll: true,
  allValue: '.*',
  current: { selected: true, text: ['All'], value: ['$__all'] },
  hide: 0,
  options: [],
  regex: '',
};

function(c) {
  uid: util.text(c, 'dashboardUid'),
  title: util.text(c, 'dashboardTitle'),
  description: 'Convocore web-crawler jobs as served by convocore-crawler-exporter: progress, '
               + 'speed, failures and credits of each job, and the exporter\'s own health.',
  tags: util.texts(c, 'dashboardTags'),
  editable: true,
  graphTooltip: 1,
  refresh: util.text(c, 'dashboardRefresh'),
  schemaVersion: 39,
  time: { from: util.text(c, 'dashboardTimeFrom'), to: 'now' },
  timepicker: {},
  timezone: '',
  version: 1,
  links: [],
  annotations: {
    list: [{
      builtIn: 1,
      datasource: { type: 'grafana', uid: '-- Grafana --' },
      enable: true,
      hide: true,
      iconColor: 'rgba(0, 211, 255, 1)',
      name: 'Annotations & Alerts',
      type: 'dashboard',
    }],
  },
  templating: {
    list: [
      {
        type: 'datasource',
        name: 'datasource',
        label: 'Data source',
        query: 'prometheus',
        hide: 0,
        options: [],
        refresh: 1,
        regex: '',
      },
      labelValues('workspace_id', 'Workspace', 'label_values(convocore_crawler_up, workspace_id)'),
      labelValues('job_id', 'Job', 'label_values(convocore_crawler_up{workspace_id=~"$workspace_id"}, job_id)'),
    ],
  },
  panels: layout(items(c)),
}
