# shellcheck shell=bash disable=SC2034 # sourced: its variables are used by the scripts
# Sourced, not run: what several scripts in scripts/ must agree on.

# The targets `just dist` builds and `just verify-dist` runs, in that order (the first that
# runs natively here also serves as the health probe for the others).
dist_targets=(
    x86_64-unknown-linux-musl      # PCs, VPSs
    aarch64-unknown-linux-musl     # Raspberry Pi 3/4/5 with a 64-bit OS
    armv7-unknown-linux-musleabihf # Raspberry Pi 2/3/Zero 2 with a 32-bit OS
    arm-unknown-linux-musleabihf   # Raspberry Pi 1/Zero/Zero W (ARMv6, VFPv2)
    riscv64gc-unknown-linux-musl   # RISC-V boards (RV64GC: VisionFive 2, Milk-V, …)
)

# The targets whose std scripts/cargo-for builds from rust-src where rustup serves no rust-std
# for them (it gets a 404 for each on this project's machine; Rust ships them as tier 2).
std_from_source=(armv7-unknown-linux-musleabihf arm-unknown-linux-musleabihf riscv64gc-unknown-linux-musl)

# may_build_std TARGET: whether TARGET is one of std_from_source.
may_build_std() {
    case " ${std_from_source[*]} " in
    *" $1 "*) return 0 ;;
    *) return 1 ;;
    esac
}

# check_targets TARGET...: fail (exit 2) unless each is one of dist_targets.
check_targets() {
    local target
    for target in "$@"; do
        case " ${dist_targets[*]} " in
        *" $target "*) ;;
        *)
            echo "${0##*/}: unknown target $target (known: ${dist_targets[*]})" >&2
            exit 2
            ;;
        esac
    done
}

# zig and cargo-zigbuild (the ARM targets' C compiler and linker; see scripts/cargo-for) live
# in a Python venv of their own, outside the repository, installed by scripts/setup-static.
# A venv because Debian 12's pip refuses to install into the system's Python (PEP 668).
zig_venv=${SMOLGRAM_ZIG_VENV:-${XDG_DATA_HOME:-$HOME/.local/share}/smolgram/zig-venv}

# crate_version: the package version from Cargo.toml ("path+file:///…#smolgram@0.1.0").
crate_version() {
    local id
    id=$(cargo pkgid --quiet)
    echo "${id##*[#@]}"
}

# built_record TARGET: the file where scripts/build-static notes the path of the binary it last
# built and checked for TARGET, which `scripts/dist --built` packages without building it again.
built_record() {
    echo "${CARGO_TARGET_DIR:-target}/build-static/$1.path"
}

# check_static FILE: fail unless `file` calls FILE statically linked and stripped; print
# what it says. rustc makes a static PIE on x86_64 ("static-pie linked" in Debian 12's file
# 5.44; old versions said "dynamically linked", and this check then fails safe); zig links
# the ARM targets as plain static executables ("statically linked"). A binary that needs a
# loader, which a `FROM scratch` image lacks, names its "interpreter".
check_static() {
    local linkage
    linkage=$(file -b "$1")
    echo "file: $linkage"
    case $linkage in
    *interpreter*) ;;
    *"not stripped"*)
        echo "${0##*/}: $1 is not stripped (see [profile.release] in Cargo.toml)" >&2
        return 1
        ;;
    *"statically linked"* | *"static-pie linked"*) return 0 ;;
    esac
    echo "${0##*/}: $1 is not statically linked; was RUSTFLAGS set? (see .cargo/config.toml)" >&2
    return 1
}

# mib BYTES: "2.46 MiB"
mib() {
    awk -v b="$1" 'BEGIN { printf "%.2f MiB", b / 1048576 }'
}

# emulator_for TARGET: Debian's qemu-user emulator that runs TARGET's binaries on this
# machine, or nothing (empty) where it runs them natively.
emulator_for() {
    local arch=${1%%-*} host
    host=$(uname -m)
    case $arch in
    armv7)
        [ "$host" = armv7l ] || echo qemu-arm-static
        ;;
    arm)
        [ "$host" = armv6l ] || [ "$host" = armv7l ] || echo qemu-arm-static
        ;;
    riscv64gc)
        [ "$host" = riscv64 ] || echo qemu-riscv64-static
        ;;
    *)
        [ "$host" = "$arch" ] || echo "qemu-$arch-static"
        ;;
    esac
}

# runner_for TARGET: what runs TARGET's binaries here: the emulator, except for ARMv6, whose
# binaries run on scripts/qemu-armv6 (the same emulator as a Pi Zero's ARM1176 CPU, so an
# ARMv7 instruction in them fails here as it would there).
runner_for() {
    local emulator
    emulator=$(emulator_for "$1")
    if [ -n "$emulator" ] && [ "${1%%-*}" = arm ]; then
        echo "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/qemu-armv6"
    else
        echo "$emulator"
    fi
}
