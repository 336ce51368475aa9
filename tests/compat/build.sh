#!/usr/bin/env bash
# Builds librdkafka's own regression test runner (tests/test-runner) from the librdkafka
# sources the rdkafka-sys crate vendors, the version Cargo.lock pins (no other download), into
# target/compat/librdkafka. Idempotent: an existing runner of that version is kept.
# Plain builds only (no SSL/SASL/zstd): what the broker tests exercise here (docs/compatibility.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/target/compat
version=$(awk '/^name = "rdkafka-sys"$/ {getline; gsub(/version = |"/, ""); print; exit}' "$root/Cargo.lock")
[ -n "$version" ] || { echo "compat: rdkafka-sys is not in Cargo.lock" >&2; exit 1; }
stamp=$out/librdkafka.version
runner=$out/librdkafka/tests/test-runner
if [ -x "$runner" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
    exit 0
fi
cargo fetch --manifest-path "$root/Cargo.toml" --locked >/dev/null
src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"rdkafka-sys-$version"/librdkafka 2>/dev/null | head -1)
[ -d "$src" ] || { echo "compat: no vendored librdkafka for rdkafka-sys $version" >&2; exit 1; }
echo "compat: building librdkafka's test runner from $src"
rm -rf "$out/librdkafka" "$stamp"
mkdir -p "$out"
cp -a "$src" "$out/librdkafka"
cd "$out/librdkafka"
./configure --disable-ssl --disable-gssapi --disable-curl --disable-zstd --disable-lz4-ext \
    > "$out/configure.log" 2>&1 || { tail -20 "$out/configure.log"; exit 1; }
make -j2 libs > "$out/build-libs.log" 2>&1 || { tail -30 "$out/build-libs.log"; exit 1; }
# `build`, not the default target: that one also runs the tests.
make -C tests -j2 build > "$out/build-tests.log" 2>&1 || { tail -30 "$out/build-tests.log"; exit 1; }
echo "$version" > "$stamp"
echo "compat: built $runner"
