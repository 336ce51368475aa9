#!/usr/bin/env bash
# Builds librdkafka's own regression test runner (tests/test-runner) from the librdkafka
# sources the rdkafka-sys crate vendors, the version Cargo.lock pins (no other download), into
# target/compat/librdkafka. Idempotent: an existing runner of that version is kept.
# With OpenSSL (SSL, SASL SCRAM; PLAIN and unsecured OAUTHBEARER are built in) for the security
# scenarios; without GSSAPI (no Kerberos here), curl (OIDC) or zstd (docs/compatibility.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/target/compat
version=$(awk '/^name = "rdkafka-sys"$/ {getline; gsub(/version = |"/, ""); print; exit}' "$root/Cargo.lock")
[ -n "$version" ] || { echo "compat: rdkafka-sys is not in Cargo.lock" >&2; exit 1; }
# The stamp names the flavour too, so a runner built with other options is rebuilt.
flavour="$version ssl"
stamp=$out/librdkafka.version
runner=$out/librdkafka/tests/test-runner
if [ -x "$runner" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$flavour" ]; then
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
pkg-config --exists openssl || { echo "compat: OpenSSL headers missing (make test-deps installs libssl-dev)" >&2; exit 1; }
./configure --enable-ssl --disable-gssapi --disable-curl --disable-zstd --disable-lz4-ext \
    > "$out/configure.log" 2>&1 || { tail -20 "$out/configure.log"; exit 1; }
make -j2 libs > "$out/build-libs.log" 2>&1 || { tail -30 "$out/build-libs.log"; exit 1; }
# `build`, not the default target: that one also runs the tests.
make -C tests -j2 build > "$out/build-tests.log" 2>&1 || { tail -30 "$out/build-tests.log"; exit 1; }
echo "$flavour" > "$stamp"
echo "compat: built $runner"
