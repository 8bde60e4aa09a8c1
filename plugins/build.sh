#!/usr/bin/env bash
# Builds the policy components and writes them where the project ships them:
#
#   policies/authorize.wasm               (plugins/defaults/authorize)
#   policies/subaccount_validate.wasm     (plugins/defaults/subaccount_validate)
#   policies/visibility.wasm              (plugins/defaults/visibility)
#   policies/cascade.wasm                 (plugins/defaults/cascade)
#   policies/examples/domain_allowlist.wasm (plugins/examples/domain_allowlist)
#   policies/examples/business_hours.wasm   (plugins/examples/business_hours)
#   tests/fixtures/hostile.wasm           (plugins/testing/hostile)
#
#   plugins/build.sh           build and write the files above
#   plugins/build.sh --check   build into a temporary directory and fail,
#                              naming them, if shipped files differ
#
# The bytes depend only on the sources, plugins/Cargo.lock and the Rust
# toolchain's version (they were made with rustc 1.95): paths of the checkout,
# of CARGO_HOME and of RUSTUP_HOME are remapped. Without the wasm32 target
# (and no way to add it) nothing is built and the shipped files are used as
# they are.
set -euo pipefail

plugins="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$plugins")"
target=wasm32-unknown-unknown

check=0
case "${1:-}" in
    "") ;;
    --check) check=1 ;;
    *) echo "usage: plugins/build.sh [--check]" >&2; exit 2 ;;
esac

# crate (file name) -> shipped path, relative to the repository.
components=(
    "canopy_default_authorize:policies/authorize.wasm"
    "canopy_default_subaccount_validate:policies/subaccount_validate.wasm"
    "canopy_default_visibility:policies/visibility.wasm"
    "canopy_default_cascade:policies/cascade.wasm"
    "canopy_example_domain_allowlist:policies/examples/domain_allowlist.wasm"
    "canopy_example_business_hours:policies/examples/business_hours.wasm"
    "canopy_testing_hostile:tests/fixtures/hostile.wasm"
)

skip() {
    echo "plugins/build.sh: NOTE: $1; the policy components are not rebuilt and the shipped .wasm files are used as they are." >&2
    exit 0
}

command -v cargo >/dev/null && command -v rustc >/dev/null || skip "cargo and rustc are not installed"
if [ ! -d "$(rustc --print sysroot)/lib/rustlib/$target" ]; then
    echo "plugins/build.sh: the $target target is not installed; trying 'rustup target add $target'" >&2
    if ! command -v rustup >/dev/null || ! rustup target add "$target" >&2; then
        skip "the $target target is not installed and 'rustup target add $target' failed"
    fi
fi

cd "$plugins"
# Flags from the environment would change the bytes: only ours apply.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS RUSTC_WRAPPER CARGO_BUILD_RUSTC_WRAPPER
unset CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
rustup_home="${RUSTUP_HOME:-$HOME/.rustup}"
remap="--remap-path-prefix=$plugins=/canopy/plugins"
remap+=" --remap-path-prefix=$(cd "$cargo_home" 2>/dev/null && pwd -P || echo "$cargo_home")=/cargo"
remap+=" --remap-path-prefix=$cargo_home=/cargo"
remap+=" --remap-path-prefix=$rustup_home=/rustup"

# The tool, native; then the guests, with the remapped paths (RUSTFLAGS
# applies to the --target artifacts only).
cargo build --locked --quiet -p canopy-componentize
crates=()
for entry in "${components[@]}"; do
    crates+=(-p "$(echo "${entry%%:*}" | tr _ -)")
done
RUSTFLAGS="$remap" cargo build --locked --quiet --release --target "$target" "${crates[@]}"

componentize="$plugins/target/debug/canopy-componentize"
modules="$plugins/target/$target/release"
if [ "$check" = 1 ]; then
    out="$(mktemp -d)"
    trap 'rm -rf "$out"' EXIT
else
    out="$repo"
fi

for entry in "${components[@]}"; do
    crate="${entry%%:*}" shipped="${entry#*:}"
    mkdir -p "$(dirname "$out/$shipped")"
    "$componentize" "$modules/$crate.wasm" "$out/$shipped" >/dev/null
done

if [ "$check" = 0 ]; then
    for entry in "${components[@]}"; do
        shipped="${entry#*:}"
        echo "$shipped: $(wc -c <"$repo/$shipped") bytes"
    done
    exit 0
fi

stale=()
for entry in "${components[@]}"; do
    shipped="${entry#*:}"
    if [ ! -f "$repo/$shipped" ]; then
        stale+=("$shipped is missing")
    elif ! cmp -s "$out/$shipped" "$repo/$shipped"; then
        stale+=("$shipped differs from what its sources build")
    fi
done
if [ "${#stale[@]}" -gt 0 ]; then
    for f in "${stale[@]}"; do
        echo "plugins/build.sh --check: STALE: $f (run plugins/build.sh)" >&2
    done
    echo "plugins/build.sh --check: built with $(rustc -V); the shipped files were built with rustc 1.95.0" >&2
    exit 1
fi
echo "plugins/build.sh --check: the ${#components[@]} shipped components are up to date"
