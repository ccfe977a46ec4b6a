"""Everything served over HTTP: the routes (``server``), the landing page, the
``/probe?debug=true`` report, and the ``--web.config.file`` support.

``config`` reads and validates the exporter-toolkit's YAML format, ``tls`` builds the TLS
context, ``auth`` checks basic auth, ``ratelimit`` is the request rate limit, and
``httpserver`` is the HTTP server that does each TLS handshake in the connection's own thread.
"""
