# threadwise: the Slack app, its sync scheduler and the agent team in one process.
# Build: docker build -t threadwise .   Run: see docker-compose.yml and README.md ("Production").
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY knowledge ./knowledge
RUN python -m venv /opt/threadwise && /opt/threadwise/bin/pip install .

FROM python:3.11-slim
ENV PATH=/opt/threadwise/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    AGNO_TELEMETRY=false \
    THREADWISE_LOG_FORMAT=json \
    THREADWISE_DOCS=/docs \
    MILVUS_URI=/data/milvus.db \
    DATABASE_URL=sqlite:////data/threadwise.db
RUN groupadd --system --gid 10001 threadwise \
    && useradd --system --uid 10001 --gid threadwise --home-dir /data --no-create-home threadwise \
    && mkdir -p /data /docs && chown threadwise:threadwise /data
COPY --from=build /opt/threadwise /opt/threadwise
# No secrets in the image: SLACK_*, OPENAI_API_KEY, MILVUS_TOKEN and DATABASE_URL come from the environment.
USER threadwise
WORKDIR /data
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["threadwise"]
CMD ["serve", "--host", "0.0.0.0", "--port", "3000"]
