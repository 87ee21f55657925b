# syntax=docker/dockerfile:1
# One build, three small runtime images: `docker build --target auth-service .` (likewise
# inventory-service, gateway). docker-compose.yml builds all three.

FROM rust:1.95-slim-bookworm AS build
# jemalloc, the services' allocator, is built from C with make (the slim image has only gcc).
RUN apt-get update && apt-get install -y --no-install-recommends make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p auth-service -p inventory-service -p gateway \
 && mkdir -p /out \
 && cp target/release/auth-service target/release/inventory-service target/release/gateway /out/

# glibc and CA certificates, no shell, a non-root user: about 25 MB before the binary.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
WORKDIR /home/nonroot

FROM runtime AS auth-service
COPY --from=build /out/auth-service /usr/local/bin/auth-service
ENV AUTH_LISTEN=0.0.0.0:50051
EXPOSE 50051
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["auth-service", "healthcheck"]
ENTRYPOINT ["auth-service"]

FROM runtime AS inventory-service
COPY --from=build /out/inventory-service /usr/local/bin/inventory-service
ENV INVENTORY_LISTEN=0.0.0.0:50052
EXPOSE 50052
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["inventory-service", "healthcheck"]
ENTRYPOINT ["inventory-service"]

FROM runtime AS gateway
COPY --from=build /out/gateway /usr/local/bin/gateway
ENV GATEWAY_LISTEN=0.0.0.0:8000
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["gateway", "healthcheck"]
ENTRYPOINT ["gateway"]
