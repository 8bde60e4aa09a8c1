# Canopy in a container: built in a Rust image, run in a slim Debian one as
# a user without privileges. Building fetches crates; running needs no
# network but its database (and SMTP or webhook targets, if configured).
#
#   docker build -t canopy .
#   docker run -p 8080:8080 -v canopy-data:/var/lib/canopy canopy
#
# The first start prints the operator token once (`docker logs`).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p canopy --bin canopy \
    && cp target/release/canopy /usr/local/bin/canopy

FROM debian:bookworm-slim
# A fixed uid/gid, so a mounted volume can be prepared for it.
RUN groupadd --system --gid 10001 canopy \
    && useradd --system --uid 10001 --gid canopy --home-dir /var/lib/canopy --shell /usr/sbin/nologin canopy \
    && mkdir -p /var/lib/canopy \
    && chown canopy:canopy /var/lib/canopy \
    && chmod 0700 /var/lib/canopy
COPY --from=build /usr/local/bin/canopy /usr/local/bin/canopy
USER canopy:canopy
WORKDIR /var/lib/canopy
# Listen on every interface inside the container; SQLite (with its data key
# and compiled-policy cache beside it) in the volume unless
# CANOPY_DATABASE_URL names PostgreSQL.
ENV CANOPY_LISTEN=0.0.0.0:8080 \
    CANOPY_DATABASE_URL=sqlite:///var/lib/canopy/canopy.db \
    CANOPY_LOG_FORMAT=json
VOLUME ["/var/lib/canopy"]
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/canopy"]
CMD ["serve"]
