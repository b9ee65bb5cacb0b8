# The emulator serving the default package, set up by the README's own command (`make serve`).
FROM python:3.11-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends make libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
RUN make setup PYTHON=python3.11
EXPOSE 8000
CMD ["make", "serve", "ARGS=--host 0.0.0.0"]
