"""The ``--web.config.file`` support: the exporter-toolkit's YAML format and what it turns on.

``config`` reads and validates the file, ``tls`` builds the TLS context, ``auth`` checks basic
auth, ``ratelimit`` is the request rate limit, and ``httpserver`` is the HTTP server that does
each TLS handshake in the connection's own thread.
"""
