#!/usr/bin/env bash
# Builds the release binaries of netkit: static (CGO_ENABLED=0), stripped,
# reproducible paths (-trimpath), the version stamped into
# internal/cli.version, one per target, plus SHA256SUMS, in dist/.
#
#   scripts/release.sh                    # version from git describe
#   VERSION=v1.2.0 scripts/release.sh
#   TARGETS="linux/amd64 darwin/arm64" scripts/release.sh
#   make release
#
# The binary names are netkit-VERSION-OS-ARCH (.exe on Windows). The script
# stops at the first target that does not build, so a release is never
# missing a platform silently, and checks that the binary for this machine,
# when there is one, prints the stamped version.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

targets=${TARGETS:-"linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 freebsd/amd64 freebsd/arm64 windows/amd64 windows/arm64"}
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
out=${OUT:-dist}
rm -rf "$out"
mkdir -p "$out"

for target in $targets; do
	os=${target%/*} arch=${target#*/}
	name="netkit-$version-$os-$arch"
	[ "$os" = windows ] && name="$name.exe"
	echo "building $name" >&2
	CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath \
		-ldflags "-s -w -X github.com/netkit/netkit/internal/cli.version=$version" \
		-o "$out/$name" ./cmd/netkit
done

(cd "$out" && sha256sum netkit-* >SHA256SUMS)

host="$out/netkit-$version-$(go env GOOS)-$(go env GOARCH)"
if [ -x "$host" ]; then
	got=$("$host" version)
	case $got in
	"netkit $version "*) ;;
	*) echo "release.sh: $host version prints \"$got\", want netkit $version" >&2; exit 1 ;;
	esac
fi
echo "release $version in $out/:" >&2
cat "$out/SHA256SUMS"
