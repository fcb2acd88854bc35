# One image for every casewatch service (engine, ingest, notifier, simulator); the command picks.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
# `casewatch report` prints its PDFs with headless Chromium and counts their pages with pdfinfo
# (Debian `chromium`, `poppler-utils`; fonts-dejavu-core so the pages have a font).
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium poppler-utils fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY casewatch ./casewatch
COPY schemas ./schemas
COPY services ./services
COPY dashboards ./dashboards
COPY prometheus ./prometheus
RUN pip install --no-cache-dir . && useradd --system --create-home --uid 10001 casewatch
USER casewatch
ENV CASEWATCH_STATE_DIR=/tmp/casewatch
ENTRYPOINT []
CMD ["casewatch", "--help"]
