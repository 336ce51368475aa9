#!/usr/bin/env bash
# Builds the image shoal:dev from scratch (no registry): stages a root filesystem of the
# release binaries plus the shared libraries ldd reports, then `docker build`s it.
#
# Usage: deploy/image/build.sh [TAG]   (TAG defaults to shoal:dev; binaries from target/release)
set -euo pipefail

tag=${1:-shoal:dev}
bin_dir=${BIN_DIR:-target/release}
binaries=(shoal shoal-chaos shoalctl)
stage=${STAGE_DIR:-target/image}

command -v docker >/dev/null || { echo "image: docker CLI not found" >&2; exit 1; }
rm -rf "$stage"
mkdir -p "$stage/rootfs/usr/bin" "$stage/rootfs/etc" "$stage/rootfs/tmp" "$stage/data"

found=()
for b in "${binaries[@]}"; do
  if [ -x "$bin_dir/$b" ]; then
    install -m 0755 "$bin_dir/$b" "$stage/rootfs/usr/bin/$b"
    found+=("$bin_dir/$b")
  elif [ "$b" = shoal ]; then
    echo "image: $bin_dir/shoal not found; run cargo build --release first" >&2
    exit 1
  else
    echo "image: $bin_dir/$b not built; the image goes without it"
  fi
done

# Every library any binary links, at the path the dynamic loader looks for it.
libs=$(ldd "${found[@]}" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $1 !~ /:$/ {print $1}' | sort -u)
for lib in $libs; do
  mkdir -p "$stage/rootfs$(dirname "$lib")"
  cp -L "$lib" "$stage/rootfs$lib"
done

# The non-root user the node runs as; nologin shell, home is the data volume.
cat >"$stage/rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
shoal:x:10001:10001:shoal:/data:/sbin/nologin
PASSWD
cat >"$stage/rootfs/etc/group" <<'GROUP'
root:x:0:
shoal:x:10001:
GROUP
chmod 1777 "$stage/rootfs/tmp"
cp deploy/image/Dockerfile "$stage/Dockerfile"

echo "image: building $tag from $(echo "$libs" | wc -w) shared libraries and ${#found[@]} binaries"
# The classic builder: no BuildKit/buildx needed, and FROM scratch pulls nothing.
DOCKER_BUILDKIT=0 docker build --quiet -t "$tag" "$stage" >/dev/null
size=$(docker image inspect -f '{{.Size}}' "$tag")
echo "image: $tag built, $((size / 1024 / 1024)) MiB ($size bytes)"
