"""The upstream side: HTTP to the Convocore v3 API, and what its answers mean.

Nothing here knows of Prometheus; collection (``exporter.collect``) turns these results into
metric families.
"""
