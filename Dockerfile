# smolgram in a `FROM scratch` image: the static binary and nothing else (about 3 MiB).
#
# The binary is built before `docker build`, outside Docker, so the build needs no Rust image
# and no network, and the context is that one file (see .dockerignore):
#
#   just static && docker build -t smolgram .          # or: just docker
#   just docker-check                                   # the layout, without a Docker engine
#   docker build --build-arg BINARY=dist/smolgram-0.1.0-aarch64-unknown-linux-musl \
#       --platform linux/arm64 -t smolgram:arm64 .     # a binary from `just dist`
#   docker run -d --name bot --restart on-failure:5 -e TELEGRAM_BOT_TOKEN -p 8080:8080 smolgram
#
# A build from a git checkout, with no binary at hand (Railway or Heroku building from
# GitHub), uses contrib/Dockerfile.source instead: a Rust stage, then this same image.
#
# scratch has no libc, no loader, no shell, no CA files and no /etc/passwd. The binary needs
# none of them: it is static (see .cargo/config.toml) and its certificate roots are compiled
# in (rustls with webpki-roots). So there is no RUN here, and every command is exec form.

FROM scratch

# target/<TARGET>/release/smolgram is where `just static TARGET` puts it.
ARG TARGET=x86_64-unknown-linux-musl
ARG BINARY=target/${TARGET}/release/smolgram
# Owned by root and not writable by the user below: the process cannot replace its own binary.
COPY ${BINARY} /smolgram

# nobody:nogroup by number (scratch has no /etc/passwd to look a name up in). The health port
# is above 1024, so no capability is needed.
USER 65534:65534

# The health listener: /healthz, /readyz, /metrics. `PORT` moves it (as Railway and Heroku set
# it); the HEALTHCHECK below reads the same `PORT`. Telegram itself needs no inbound port.
EXPOSE 8080

# No curl in scratch: the binary probes its own /healthz and exits 0 or 1. It gives up after
# 3 s itself, so --timeout never cuts a probe short.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/smolgram", "healthcheck"]

# SIGTERM starts the drain: running handlers get --drain-timeout (8 s) to finish, under
# `docker stop`'s 10 s before SIGKILL. With a longer --drain-timeout, raise `docker stop -t`
# (or compose's stop_grace_period) to match.
STOPSIGNAL SIGTERM

# Flags go after the image name: `docker run … smolgram --max-handlers 16`. Exec form, so the
# binary is PID 1 and receives the signal itself.
ENTRYPOINT ["/smolgram"]
