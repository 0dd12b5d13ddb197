#!/usr/bin/env bash
# Builds the otelcol-failover container image from an already built binary.
#
#   distribution/image/build.sh <collector binary>
#
# `make image` runs it after `make build`; the image test (distribution/
# image_test.go) runs it too, so the image under test is built exactly as
# users build it.
#
# The build context is a staging directory holding only what the image
# contains (binaries, CA bundle, passwd/group, default config, an empty
# directory), so nothing else of the checkout is sent to the engine and no
# base image is pulled (distribution/Containerfile is FROM scratch).
#
# The version is the binary's own (`otelcol-failover --version`), so the tag
# and the labels always name what is inside.
#
# Environment:
#   CONTAINER_ENGINE  podman or docker; default: podman if installed, else
#                     docker if its daemon answers.
#   IMAGE_NAME        default otelcol-failover; tags <name>:<tag> and
#                     <name>:latest, where <tag> is the version with every
#                     character a tag cannot hold (such as `+`) turned into `_`.
#   CA_BUNDLE         default /etc/ssl/certs/ca-certificates.crt (Debian's
#                     ca-certificates package).
#   STAGING_DIR       default bin/image-context next to the binary.
#   DLQ_BINARY        the dlq tool (cmd/dlq); default: dlq next to the
#                     collector binary (`make build` builds both).
#
# It prints the image id on its last line.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

[[ $# == 1 ]] || { echo "usage: build.sh <collector binary>" >&2; exit 2; }
collector=$1
[[ -x $collector ]] || { echo "build.sh: $collector is not an executable: run \`make build\` first" >&2; exit 1; }
collector=$(cd "$(dirname "$collector")" && pwd)/$(basename "$collector")
dlq=${DLQ_BINARY:-$(dirname "$collector")/dlq}
[[ -x $dlq ]] || { echo "build.sh: $dlq is not an executable: run \`make build\` first (it builds bin/dlq) or set DLQ_BINARY" >&2; exit 1; }

version=$("$collector" --version | awk '{print $NF}')
[[ -n $version ]] || { echo "build.sh: $collector --version printed no version" >&2; exit 1; }
tag=$(printf '%s' "$version" | tr -c 'A-Za-z0-9_.-' '_')
tag=${tag:0:128}

image=${IMAGE_NAME:-otelcol-failover}
ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[[ -s $ca ]] || { echo "build.sh: CA bundle $ca not found: install the ca-certificates package or set CA_BUNDLE" >&2; exit 1; }

engine=${CONTAINER_ENGINE:-}
if [[ -z $engine ]]; then
  if command -v podman >/dev/null; then
    engine=podman
  elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    engine=docker
  else
    echo "build.sh: no container engine: install podman and runc (apt-get install podman runc; \`make deps\` does it) or start a Docker engine" >&2
    exit 1
  fi
fi

revision=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)

staging=${STAGING_DIR:-$(dirname "$collector")/image-context}
rm -rf "$staging"
mkdir -p "$staging/empty"
cp "$collector" "$staging/otelcol-failover"
cp "$dlq" "$staging/dlq"
chmod 0755 "$staging/otelcol-failover" "$staging/dlq"
cp "$ca" "$staging/ca-certificates.crt"
cp "$here/passwd" "$here/group" "$here/config.yaml" "$staging/"
chmod 0644 "$staging/ca-certificates.crt" "$staging/passwd" "$staging/group" "$staging/config.yaml"
chmod 0755 "$staging/empty"

# The image these tags named before, removed below if the build leaves it
# without any tag (a rebuild of the same version), so rebuilds do not pile
# up 50 MB dangling images.
previous=$("$engine" image inspect --format '{{.Id}}' "$image:$tag" 2>/dev/null || true)

echo "building $image:$tag and $image:latest with $engine (context: $staging, $(du -sh "$staging" | cut -f1))" >&2
# The version and revision labels are also given with --label: podman 4.3
# (buildah 1.28) reuses a cached LABEL step when only a --build-arg changed,
# which would leave the previous build's version in the image.
# podman: --layers=false commits one layer and keeps no intermediate images,
# so a rebuild leaves nothing behind (there is no base image to share
# layers with anyway).
layers=()
[[ $(basename "$engine") == podman ]] && layers=(--layers=false)
"$engine" build "${layers[@]}" \
  --file "$repo/distribution/Containerfile" \
  --build-arg "VERSION=$version" \
  --build-arg "REVISION=$revision" \
  --label "org.opencontainers.image.version=$version" \
  --label "version=$version" \
  --label "org.opencontainers.image.revision=$revision" \
  --tag "$image:$tag" \
  --tag "$image:latest" \
  "$staging" >&2
id=$("$engine" image inspect --format '{{.Id}}' "$image:$tag")
if [[ -n $previous && $previous != "$id" ]] &&
   [[ $("$engine" image inspect --format '{{len .RepoTags}}' "$previous" 2>/dev/null) == 0 ]]; then
  "$engine" rmi "$previous" >/dev/null 2>&1 || true
fi
echo "$id"
