# The wasm-reconciler image: the host binary and the example plugins, non-root.
#
#   docker build -t wasm-reconciler:0.1.0 .
#
# The builder and the runtime must share a glibc: rust:*-bookworm builds for Debian 12, and
# distroless/cc-debian12 is Debian 12's glibc and libgcc with nothing else (no shell, no
# package manager).

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
RUN rustup target add wasm32-wasip2
WORKDIR /src
COPY . .
# The cache mounts keep crates and build outputs between image builds; what the image needs
# is copied out of the cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    set -eux; \
    CARGO_PROFILE_RELEASE_STRIP=symbols cargo build --release --locked -p wasm-reconciler; \
    plugins=""; \
    for dir in plugins/*/; do if [ -f "$dir/Cargo.toml" ]; then plugins="$plugins -p $(basename "$dir")"; fi; done; \
    cargo build --release --locked --target wasm32-wasip2 $plugins; \
    mkdir -p /out/plugins; \
    cp target/release/wasm-reconciler /out/; \
    cp target/wasm32-wasip2/release/*.wasm /out/plugins/

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/wasm-reconciler /usr/local/bin/wasm-reconciler
# The example plugins, for `docker run`; in Kubernetes, deploy/ mounts the plugins
# directory over this one.
COPY --from=build /out/plugins/ /plugins/
# distroless's `nonroot` user; deploy/ runs the pod as this uid too.
USER 65532:65532
# Metrics and health (/healthz, /readyz).
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/wasm-reconciler"]
CMD ["run", "--plugins", "/plugins"]
