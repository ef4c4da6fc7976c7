# The demo mesh's services (examples/mesh: orders, billing, the legacy app) for
# docker/compose.yaml: meshgate (its mesh client) and the OTLP exporter the services trace
# with, from the same wheelhouse as docker/Dockerfile (`make docker` builds both).
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
COPY build/wheels /wheels
COPY docker/wheelhouse.txt /tmp/wheelhouse.txt
RUN python3 -m venv /opt/meshgate \
 && /opt/meshgate/bin/python -m pip install --no-cache-dir --no-index --find-links /wheels \
      meshgate -r /tmp/wheelhouse.txt \
 && /opt/meshgate/bin/python -m pip uninstall -y -q pip setuptools

FROM ${BASE}
RUN groupadd --system --gid 10001 meshgate \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin meshgate
COPY --from=build /opt/meshgate /opt/meshgate
COPY examples/__init__.py /app/examples/__init__.py
COPY examples/mesh /app/examples/mesh
ENV PATH=/opt/meshgate/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /app
USER 10001:10001
# Each service is a module: `python -m examples.mesh.orders --port 9201 --name stable`.
ENTRYPOINT ["python", "-m"]
