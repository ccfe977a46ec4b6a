# syntax=docker/dockerfile:1

# Container image for convocore-crawler-exporter.
#
# Build:  docker build -t convocore-crawler-exporter:0.1.0 \
#           --build-arg REVISION="$(git rev-parse HEAD)" \
#           --build-arg BUILD_DATE="$(date -u +%Y%m%d-%H:%M:%S)" .
# Run:    docker run --rm -p 19417:19417 convocore-crawler-exporter:0.1.0 --demo
#         docker run --rm -p 19417:19417 -e CONVOCORE_TOKEN \
#           -v "$PWD/config.yaml:/etc/convocore-exporter/config.yaml:ro" \
#           convocore-crawler-exporter:0.1.0
#
# The base image is pinned to an exact Python patch release on Debian 12 (bookworm).
# For byte-for-byte reproducible builds also pin its digest: look it up with
#   docker buildx imagetools inspect python:3.11.14-slim-bookworm
# and pass it in, e.g. --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest>.
# (sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d is a
# multi-platform index digest this tag has been published under; tags are rebuilt when
# Debian ships fixes, so look up the current one rather than trusting this comment.)
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---- builder: turn the source tree into wheels (the project's and its dependencies') ----
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY exporter/ exporter/
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# ---- final: the wheels installed into a clean interpreter, run as a non-root user ----
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="convocore-crawler-exporter" \
      org.opencontainers.image.description="Prometheus exporter for Convocore web-crawler jobs" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# The wheels are bind-mounted from the builder for this one step, so they never land in a
# layer of the final image.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --root-user-action=ignore /wheels/*.whl \
    && groupadd --system --gid 65532 exporter \
    && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin exporter

# What --version and convocore_crawler_exporter_build_info report (the build context has no
# .git to read them from). Declared after the install, so changing them rebuilds nothing.
ARG REVISION=unknown
ARG BUILD_DATE=unknown
ENV CONVOCORE_EXPORTER_REVISION=${REVISION} \
    CONVOCORE_EXPORTER_BUILD_DATE=${BUILD_DATE}
LABEL org.opencontainers.image.revision=${REVISION}

# Numeric so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532
EXPOSE 19417

# slim images have no curl: ask Python. urlopen raises (exit status 1) on any non-2xx
# answer or connection error. Liveness only: /-/healthy never depends on the upstream API.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:19417/-/healthy', timeout=4)"]

# Exec form: the exporter is PID 1 and receives `docker stop`'s SIGTERM itself; it handles
# it by closing the HTTP server and exiting 0. It starts no child processes, so no init
# process is needed to reap zombies (`docker run --init` adds one if ever wanted).
STOPSIGNAL SIGTERM
ENTRYPOINT ["convocore-crawler-exporter"]
# Real use by default: mount a config file here (see docs/deploy.md). The demo is one flag
# away (`... convocore-crawler-exporter:0.1.0 --demo`), but never the silent default.
CMD ["--config.file=/etc/convocore-exporter/config.yaml"]
