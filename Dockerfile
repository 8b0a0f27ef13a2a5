FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY reminders ./reminders
COPY config ./config
RUN pip install --no-cache-dir . && useradd --system --home /app reminders && mkdir -p /app/outbox \
    && chown reminders /app/outbox
USER reminders
ENV REMINDERS_POLICY_FILE=/app/config/policy.yaml REMINDERS_TEMPLATES_DIR=/app/config/templates \
    REMINDERS_HTTP_HOST=0.0.0.0 REMINDERS_DRYRUN_DIR=/app/outbox
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"
CMD ["reminders", "run"]
