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
 && for service in auth-service inventory-service gateway; do \
      mkdir -p /out/$service \
      && cp target/release/$service /out/$service/ \
      && ln -s $service /out/$service/service; \
    done

# glibc and CA certificates, no shell, a non-root user: about 25 MB before the binary. Each
# service's stage copies in its binary and `service`, a link to it, so that one health check
# serves all three: `service healthcheck`, the binary's own probe of the server it runs.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
WORKDIR /home/nonroot
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["service", "healthcheck"]

FROM runtime AS auth-service
COPY --from=build /out/auth-service/ /usr/local/bin/
ENV AUTH_LISTEN=0.0.0.0:50051
EXPOSE 50051
ENTRYPOINT ["auth-service"]

FROM runtime AS inventory-service
COPY --from=build /out/inventory-service/ /usr/local/bin/
ENV INVENTORY_LISTEN=0.0.0.0:50052
EXPOSE 50052
ENTRYPOINT ["inventory-service"]

FROM runtime AS gateway
COPY --from=build /out/gateway/ /usr/local/bin/
ENV GATEWAY_LISTEN=0.0.0.0:8000
EXPOSE 8000
ENTRYPOINT ["gateway"]
