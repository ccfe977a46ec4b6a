// The Grafana dashboards, by file name.
local crawler = import 'convocore-crawler.libsonnet';

{
  grafanaDashboards+:: {
    'convocore-crawler.json': crawler($._config),
  },
}
