# Sequencer image: one image for the worker, the streamer and the UI.
#
#   docker build -t sequencer .
#   docker run --rm sequencer --help            # ENTRYPOINT is `sequencer`
#   docker run --rm --entrypoint streamer sequencer --help
#
# Settings come from the environment (see sequencer/settings.py and
# docker-compose.yml); nothing is baked in.

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The runtime user. Pass your own ids (docker compose does: APP_UID/APP_GID)
# so files written to a bind-mounted ./data belong to you.
ARG APP_UID=1000
ARG APP_GID=1000
RUN groupadd --gid "${APP_GID}" app \
 && useradd --uid "${APP_UID}" --gid app --create-home --home-dir /home/app \
            --shell /usr/sbin/nologin app

# Install the project (and its dependencies) from the build context, then drop
# the sources: the image runs the installed package only.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY sequencer ./sequencer
COPY streamer ./streamer
RUN pip install . \
 && rm -rf /src

# /app/data is where compose mounts ./data (samples in, checkpoints out); the
# default SEQUENCER_STATE_DIR (data/sequencer_runs/state) resolves under it.
WORKDIR /app
RUN mkdir -p /app/data && chown -R app:app /app

USER app

# Faust web (/lag) and the Streamlit UI.
EXPOSE 6066 8501

ENTRYPOINT ["sequencer"]
CMD ["worker"]
