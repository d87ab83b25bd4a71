# logtap's container image: a release build on Debian, run as a non-root
# user with the data directory as a volume.
#
#   docker build -t logtap --build-arg LOGTAP_GIT_COMMIT=$(git rev-parse --short HEAD) .
#   docker run -d -p 50051:50051 -v logtap-data:/var/lib/logtap \
#     -v $PWD/tokens.txt:/etc/logtap/tokens.txt:ro \
#     logtap serve --config /etc/logtap/logtap.toml --auth-token-file /etc/logtap/tokens.txt
#
# README.md, "In a container", says more.

FROM rust:1-slim-bookworm AS build
# The build context holds no .git (.dockerignore); the commit comes in here
# for `logtap --version`.
ARG LOGTAP_GIT_COMMIT=unknown
ENV LOGTAP_GIT_COMMIT=${LOGTAP_GIT_COMMIT}
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p logtap \
 && install -m 0755 target/release/logtap /usr/local/bin/logtap

FROM debian:bookworm-slim
# curl for the health check; ca-certificates for https:// servers that
# `logtap push` and `logtap logs` inside the image may reach.
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 logtap \
 && useradd --system --uid 10001 --gid logtap --home-dir /var/lib/logtap --shell /usr/sbin/nologin logtap \
 && mkdir -p /var/lib/logtap /etc/logtap \
 && chown logtap:logtap /var/lib/logtap
COPY --from=build /usr/local/bin/logtap /usr/local/bin/logtap
COPY contrib/container.toml /etc/logtap/logtap.toml
USER logtap:logtap
VOLUME ["/var/lib/logtap"]
EXPOSE 50051
# /healthz answers 200 once the store is open, with or without tokens; a
# server started with --tls-cert answers on https only.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD curl -fsS http://127.0.0.1:50051/healthz || curl -fsSk https://127.0.0.1:50051/healthz || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["logtap"]
CMD ["serve", "--config", "/etc/logtap/logtap.toml"]
