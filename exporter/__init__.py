"""Prometheus exporter for Convocore web-crawler jobs."""

__version__ = "0.1.0"
