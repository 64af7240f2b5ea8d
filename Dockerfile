# The voice service as a container, for compose.yaml (Railway builds with Nixpacks instead).
FROM python:3.11-slim
ENV UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never PYTHONUNBUFFERED=1
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY hana_voice ./hana_voice
RUN uv sync --frozen --no-dev
ENV PATH=/app/.venv/bin:$PATH
EXPOSE 8000
CMD ["hana-voice", "serve"]
