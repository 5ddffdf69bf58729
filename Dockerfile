# The `fsc` binary in a small image; docker-compose.yml runs the federation, the broker config
# generator and the nodes from it.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, in a layer of their own: built against stub sources, so that a change to
# fsc's code rebuilds fsc only, not the ~240 crates it depends on (only a change to a Cargo.toml
# or Cargo.lock does).
COPY Cargo.toml Cargo.lock ./
COPY crates/simon/Cargo.toml crates/simon/
COPY crates/node/Cargo.toml crates/node/
COPY crates/client/Cargo.toml crates/client/
COPY crates/tools/Cargo.toml crates/tools/
COPY crates/fsc/Cargo.toml crates/fsc/
COPY tests/Cargo.toml tests/
RUN mkdir -p crates/simon/src crates/node/src crates/client/src crates/tools/src crates/fsc/src tests/bin \
 && touch crates/simon/src/lib.rs crates/node/src/lib.rs crates/client/src/lib.rs crates/tools/src/lib.rs tests/lib.rs \
 && echo 'fn main() {}' > crates/fsc/src/main.rs && cp crates/fsc/src/main.rs tests/bin/bench.rs \
 && cargo build --release --locked -p fsc \
 && rm -rf crates tests
COPY . .
# COPY keeps the files' own times, which may be older than the stubs' build: make sure cargo
# sees fsc's crates as changed.
RUN touch crates/simon/src/lib.rs crates/node/src/lib.rs crates/client/src/lib.rs crates/tools/src/lib.rs \
    crates/fsc/src/main.rs \
 && cargo build --release --locked -p fsc && cp target/release/fsc /usr/local/bin/fsc

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /federation fsc && mkdir /federation && chown fsc /federation
COPY --from=build /usr/local/bin/fsc /usr/local/bin/fsc
USER fsc
# A node's API (the first party's default port; each node listens where its node.toml says).
EXPOSE 55501
# Ready: store readable and connected to the broker. The node's URL comes from FSC_NODE
# (default http://127.0.0.1:55501); docker-compose.yml names each node's port.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["fsc", "healthcheck"]
ENTRYPOINT ["fsc"]
