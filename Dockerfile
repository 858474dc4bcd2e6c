# A small, static image of the operator: built for musl on Alpine, run on distroless/static
# as a non-root user. TLS uses rustls with ring (no OpenSSL); distroless ships CA certificates.
# Not built on the project's build machines (no container engine there).
FROM rust:1.95-alpine AS build
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN CARGO_PROFILE_RELEASE_STRIP=true cargo build --release --locked --bin partner-billing-operator

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/target/release/partner-billing-operator /partner-billing-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/partner-billing-operator"]
CMD ["run"]
