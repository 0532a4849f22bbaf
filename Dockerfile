# Strom's container image: Python 3.11 (slim), Strom installed from this repository, run as
# an unprivileged user. `docker compose up` builds it (docker-compose.yml); see
# docs/operations.md. Everything Strom keeps lives in /srv/strom (a volume): strom.toml,
# profiles/, relay_config/ and data/ (database, keys). The first start on an empty volume
# initialises it (`strom container`); every setting comes from STROM_* variables (.env.example).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1
ENV PYTHONUNBUFFERED=1
ENV PIP_NO_CACHE_DIR=1
ENV PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 1000 strom \
    && useradd --system --uid 1000 --gid strom --home-dir /srv/strom --no-create-home \
        --shell /usr/sbin/nologin strom \
    && mkdir -p /srv/strom \
    && chown strom:strom /srv/strom

WORKDIR /opt/strom
COPY pyproject.toml README.md LICENSE ./
COPY strom ./strom
COPY strom_core ./strom_core
COPY strom_nostr ./strom_nostr
COPY strom_services ./strom_services
COPY strom_storage ./strom_storage
COPY strom_lightning ./strom_lightning
COPY strom_web ./strom_web
COPY strom_prices ./strom_prices
COPY strom_cluster ./strom_cluster
COPY agent ./agent
COPY lnurl_server ./lnurl_server
COPY ocpp_server ./ocpp_server
COPY cockpit ./cockpit
RUN pip install --no-compile . && rm -rf /opt/strom

# The container listens on every interface (the compose file decides what is published).
ENV STROM_HOME=/srv/strom
ENV STROM_SERVER__HOST=0.0.0.0
ENV STROM_SERVER__PORT=8080
ENV STROM_OCPP__HOST=0.0.0.0
ENV STROM_OCPP__PORT=9000

USER strom
WORKDIR /srv/strom
EXPOSE 8080 9000

# Alive: /healthz answers. Readiness (database, lightning, relays, certificates) is /readyz,
# for orchestrators and monitoring; a node that is down must not get Strom restarted.
# Alive on /healthz, over HTTPS (any certificate: this is 127.0.0.1, not the domain) when Strom
# serves TLS itself (managed ACME or its own files), else over HTTP.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, ssl, urllib.request as r; e = os.environ.get; tls = bool(e('STROM_TLS__ACME_DOMAIN') or e('STROM_SERVER__TLS_CERT')); r.urlopen(('https' if tls else 'http') + '://127.0.0.1:%s/healthz' % e('STROM_SERVER__PORT', '8080'), timeout=4, context=ssl._create_unverified_context() if tls else None)"]

# SIGTERM stops Strom within its shutdown timeout (10 s); the compose file allows 20 s.
STOPSIGNAL SIGTERM
CMD ["strom", "container"]
