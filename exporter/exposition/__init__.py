"""The Prometheus side: the metric definitions, the text and OpenMetrics writer, and content
negotiation for ``/metrics``."""
