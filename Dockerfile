# streamwarden, CPU image: Debian 12, GStreamer from Debian, the service in a venv, the built-in
# models. Built by the same script as a developer's install (scripts/install-runtime.sh).
#
#   docker build -t streamwarden .
#   docker run -d -p 8080:8080 -e STREAMWARDEN_API_TOKEN=<16+ characters> \
#     -v sw-config:/config -v sw-data:/data -v sw-recordings:/recordings streamwarden
#
# BASE can name any Debian 12 image (tests/test_image.py builds on one made by debootstrap,
# since no registry is reachable there).
ARG BASE=debian:12-slim
FROM ${BASE}

ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 PYTHONUNBUFFERED=1 \
    PATH=/opt/streamwarden/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    STREAMWARDEN_CACHE=/data/cache

COPY . /opt/streamwarden-src
# One layer: the runtime, a system user without a login, the data directories, and nothing
# of the build left behind (apt lists, pip's cache, the source).
RUN /opt/streamwarden-src/scripts/install-runtime.sh --venv /opt/streamwarden \
 && useradd --system --uid 10001 --user-group --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin streamwarden \
 && install -d -o streamwarden -g streamwarden -m 0700 /data /recordings \
 && install -d -o streamwarden -g streamwarden -m 0750 /config \
 && install -o streamwarden -g streamwarden -m 0640 \
      /opt/streamwarden-src/packaging/container.toml /config/streamwarden.toml \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /root/.cache /opt/streamwarden-src

USER streamwarden
WORKDIR /data
VOLUME ["/config", "/data", "/recordings"]
# 8080: the API and dashboard; 8554: the RTSP restream (127.0.0.1 in the default config)
EXPOSE 8080 8554
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["streamwarden", "health", "--ready"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["streamwarden"]
CMD ["run", "--config", "/config/streamwarden.toml"]
