# Multi-stage build of the operator image: a static-ish release binary on a distroless,
# non-root base. TLS uses rustls with ring (no OpenSSL).
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --bin partner-billing-operator

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/partner-billing-operator /partner-billing-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/partner-billing-operator"]
CMD ["run"]
