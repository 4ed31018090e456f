FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY scheduler ./scheduler
COPY workers ./workers
COPY broker_config ./broker_config
RUN pip install --no-cache-dir . && useradd --create-home yardmaster
USER yardmaster
ENV YM_REDIS_URL=redis://redis:6379/0
CMD ["yardmaster", "--help"]
