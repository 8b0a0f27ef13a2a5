# Two stages: build the wheel (the same artefact `pip install` gets), then install only the
# wheel into a slim image that runs as a non-root user. The defaults (policy, templates,
# crisis lists) are package data inside the wheel; mount a folder written by
# `reminders init` and set REMINDERS_POLICY_FILE / REMINDERS_TEMPLATES_DIR to override them.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY reminders ./reminders
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --system --create-home --home-dir /app reminders \
    && mkdir -p /app/outbox /app/config && chown reminders /app/outbox /app/config
WORKDIR /app
USER reminders
ENV REMINDERS_HTTP_HOST=0.0.0.0 REMINDERS_DRYRUN_DIR=/app/outbox
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]
CMD ["reminders", "run"]
