# smolgram's tasks; `just` lists them. The CI (.ci/run) does not need `just`: it calls the
# same scripts in scripts/.

# List the recipes.
default:
    @just --list --unsorted

# Release build for this machine.
build:
    cargo build --release

# Unit, integration and doc tests; also builds the examples.
test:
    cargo test

# The CI's lints: formatting, clippy and rustdoc, warnings as errors.
lint:
    cargo fmt --check
    cargo clippy --all-targets -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --no-deps

# Targets: x86_64-unknown-linux-musl, aarch64-unknown-linux-musl, armv7-unknown-linux-musleabihf,
# arm-unknown-linux-musleabihf (ARMv6), riscv64gc-unknown-linux-musl.
# smolgram's own unless cargo arguments say what else: `just static TARGET --example echo`.
# Static release binary for a target; checks it is static and stripped, prints path and size.
static target="x86_64-unknown-linux-musl" *args:
    scripts/build-static '{{target}}' {{args}}

# Install what `just static TARGET` needs (Rust target, a C compiler for ring), if missing.
setup-static target="x86_64-unknown-linux-musl":
    scripts/setup-static '{{target}}'

# Rust targets (or rust-src), musl-tools, zig and cargo-zigbuild in a venv, qemu-user-static, file.
# Install what `just dist` and `just verify-dist` need for every target, skipping what is there.
setup-cross:
    scripts/setup-static --build --run all

# Release binaries for all targets: dist/smolgram-<version>-<target> and dist/SHA256SUMS.
dist:
    scripts/dist

# Run each binary in dist/ (ARM ones under qemu-user): --version, the demo, health endpoint, SIGTERM.
verify-dist:
    scripts/verify-dist

# The built-in demo bot against the in-process fake Bot API.
demo:
    cargo run --release -- demo

# Throughput, CPU, RSS and health latency of the release binary against the testkit's fake Bot API.
# Extra arguments go to the benchmark: `just bench --updates 20000 --runs 3`.
bench *args: build
    cargo bench --bench throughput -- --bin target/release/smolgram {{args}}

# Fail if tokio, hyper, aws-lc, openssl-sys or native-tls is in the dependency tree.
forbidden:
    scripts/forbidden-crates

# Everything the CI runs, as the CI runs it (installs what is missing).
ci:
    bash .ci/run

# Needs a Docker engine; then `docker run -e TELEGRAM_BOT_TOKEN -p 8080:8080 smolgram`. See Dockerfile.
# The `FROM scratch` image from the static binary.
docker target="x86_64-unknown-linux-musl" tag="smolgram": (static target)
    docker build --build-arg TARGET='{{target}}' -t '{{tag}}' .

# Needs podman and runc (Debian's); TARGET aarch64-unknown-linux-musl runs under qemu-user.
# The image under a real engine: size, user 65534, read-only root, HEALTHCHECK, ports, stop.
image-test target="x86_64-unknown-linux-musl": (static target)
    scripts/image-test '{{target}}'

# systemd-analyze security --offline on contrib/smolgram.service; fails above its threshold.
# The systemd unit's sandbox exposure score.
unit-security:
    scripts/unit-security

# No Docker engine needed: the COPY source exists, is static, runs as the image's user, fits 3 MiB.
# The image's layout checked without Docker, and its would-be size.
docker-check target="x86_64-unknown-linux-musl": (static target)
    scripts/check-image-layout '{{target}}'
