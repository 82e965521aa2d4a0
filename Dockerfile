# The operator image: built with the Rust toolchain, run from a distroless
# base as a non-root user with nothing but the binary and CA certificates.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY src src
RUN cargo build --release --locked --bin ferry \
 && cp target/release/ferry /ferry

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /ferry /usr/local/bin/ferry
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/ferry"]
CMD ["run", "--log-format", "json"]
