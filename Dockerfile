# The `fsc` binary in a small image; docker-compose.yml runs the federation, the broker config
# generator and the nodes from it.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p fsc && cp target/release/fsc /usr/local/bin/fsc

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /federation fsc && mkdir /federation && chown fsc /federation
COPY --from=build /usr/local/bin/fsc /usr/local/bin/fsc
USER fsc
ENTRYPOINT ["fsc"]
