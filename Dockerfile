# One image for every casewatch service (engine, ingest, notifier, simulator); the command picks.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY casewatch ./casewatch
COPY schemas ./schemas
COPY services ./services
COPY dashboards ./dashboards
COPY prometheus ./prometheus
RUN pip install --no-cache-dir . && useradd --system --uid 10001 casewatch
USER casewatch
ENV CASEWATCH_STATE_DIR=/tmp/casewatch
ENTRYPOINT []
CMD ["casewatch", "--help"]
