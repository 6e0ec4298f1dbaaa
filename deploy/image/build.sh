#!/usr/bin/env bash
# Build the slo-agent container image from a prebuilt static binary (docs/deploy.md, "The image").
#
#   deploy/image/build.sh [--bin PATH] [--tag IMAGE:TAG] [--source URL] [--builder "podman …"]
#                         [--platform linux/amd64] [--keep-debug] [-- EXTRA BUILD ARGS…]
#
# --bin       the binary; default: $CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/slo-agent,
#             built with
#               RUSTFLAGS="-C target-feature=+crt-static" \
#                 cargo build --release -p slo-agent --features aws --target x86_64-unknown-linux-gnu
#             It must be statically linked: the image has no libc, no loader, nothing else.
# --tag       default: localhost/slo-agent:<version from agent/Cargo.toml>
# --source    the org.opencontainers.image.source label; default: the git remote `origin`
# --builder   the build command without `build`; default: podman, else buildah (`bud`), else docker
# --platform  passed to the builder (say linux/arm64 for an arm64 binary)
# --keep-debug  keep the binary's line tables (default: `strip --strip-debug`, a quarter of the
#             size; symbol names stay, so backtraces still name functions). $STRIP names the
#             strip of another architecture (aarch64-linux-gnu-strip for an arm64 binary).
#
# Prints the image id on the last line. Needs no registry: the image is FROM scratch.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
die() { printf 'build.sh: %s\n' "$*" >&2; exit 2; }

bin="${CARGO_TARGET_DIR:-$root/target}/x86_64-unknown-linux-gnu/release/slo-agent"
tag=""
source_url=""
builder=""
platform=""
keep_debug=false
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    --source) source_url="$2"; shift 2 ;;
    --builder) builder="$2"; shift 2 ;;
    --platform) platform="$2"; shift 2 ;;
    --keep-debug) keep_debug=true; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

[ -f "$bin" ] || die "no binary at $bin; build it first (see --help) or give --bin"
command -v readelf >/dev/null || die "readelf (binutils) is needed to check that the binary is static"
readelf -h "$bin" >/dev/null 2>&1 || die "$bin is not an ELF executable"
if readelf -l "$bin" 2>/dev/null | grep -q 'Requesting program interpreter'; then
  die "$bin is dynamically linked (it names a program interpreter); the image has no libc. Build with RUSTFLAGS=\"-C target-feature=+crt-static\" and --target (see --help)"
fi
if readelf -d "$bin" 2>/dev/null | grep -q '(NEEDED)'; then
  die "$bin needs shared libraries ($(readelf -d "$bin" | grep '(NEEDED)' | sed 's/.*\[\(.*\)\]/\1/' | tr '\n' ' ')); build it static (see --help)"
fi

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/agent/Cargo.toml" | head -1)"
[ -n "$version" ] || die "cannot read the version from agent/Cargo.toml"
revision="$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)"
if [ -z "$source_url" ]; then
  source_url="$(git -C "$root" remote get-url origin 2>/dev/null || true)"
  [ -n "$source_url" ] || die "no git remote \`origin\` to take the source label from: give --source URL"
fi
created="$(date -u ${SOURCE_DATE_EPOCH:+-d @$SOURCE_DATE_EPOCH} +%Y-%m-%dT%H:%M:%SZ)"
tag="${tag:-localhost/slo-agent:$version}"
ca_bundle="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
[ -s "$ca_bundle" ] || die "no CA bundle at $ca_bundle (Debian: ca-certificates); set CA_BUNDLE"

if [ -z "$builder" ]; then
  if command -v podman >/dev/null; then builder=podman
  elif command -v buildah >/dev/null; then builder=buildah
  elif command -v docker >/dev/null; then builder=docker
  else die "no container builder (podman, buildah or docker) found"; fi
fi
read -r -a builder_cmd <<<"$builder"
case "$(basename "${builder_cmd[0]}")" in
  buildah) build_verb=bud ;;
  *) build_verb=build ;;
esac

ctx="$(mktemp -d "${TMPDIR:-/tmp}/slo-agent-image.XXXXXX")"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/etc/ssl/certs" "$ctx/state"
if $keep_debug; then
  cp "$bin" "$ctx/rootfs/usr/local/bin/slo-agent"
else
  "${STRIP:-strip}" --strip-debug -o "$ctx/rootfs/usr/local/bin/slo-agent" "$bin"
fi
chmod 0755 "$ctx/rootfs/usr/local/bin/slo-agent"
cp "$ca_bundle" "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
chmod 0644 "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$ctx/rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$ctx/rootfs/etc/group"
# The static C library resolves names (AWS endpoints, notification URLs) itself, with its
# built-in `files` and `dns` sources only; say so, so nothing else is looked for.
printf 'hosts: files dns\n' >"$ctx/rootfs/etc/nsswitch.conf"
chmod 0644 "$ctx/rootfs/etc/passwd" "$ctx/rootfs/etc/group" "$ctx/rootfs/etc/nsswitch.conf"
cp "$here/Containerfile" "$ctx/Containerfile"

args=("$build_verb" -f "$ctx/Containerfile" -t "$tag"
  --build-arg "VERSION=$version" --build-arg "REVISION=$revision"
  --build-arg "SOURCE=$source_url" --build-arg "CREATED=$created")
[ -n "$platform" ] && args+=(--platform "$platform")
echo "building $tag from $bin ($(du -h "$ctx/rootfs/usr/local/bin/slo-agent" | cut -f1) stripped binary) with ${builder_cmd[*]}" >&2
"${builder_cmd[@]}" "${args[@]}" "${extra[@]}" "$ctx" >&2
"${builder_cmd[@]}" images --no-trunc --format '{{.ID}}' "$tag" 2>/dev/null | head -1 || true
