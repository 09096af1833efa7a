#!/bin/sh
# Refresh the vendored cJSON (third_party/cjson, committed; every build compiles it) from Debian's current
# (security-patched) source package: a maintainer's tool, no build or test runs it. Commit the result.
# Uses a private apt state directory: the system apt configuration is not changed.
# Needs dpkg-dev (dpkg-source) and the network.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST="$ROOT/third_party/cjson"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/parts" "$WORK/lists/partial"
# same mirror/suites as the system's deb822 sources, as deb-src
sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > "$WORK/parts/src.sources"
: > "$WORK/empty.list"
APT="-o Dir::Etc::SourceList=$WORK/empty.list -o Dir::Etc::SourceParts=$WORK/parts -o Dir::State::Lists=$WORK/lists -o Debug::NoLocking=1 -o APT::Sandbox::User=$(id -un)"
apt-get $APT -qq update
cd "$WORK"
apt-get $APT -qq source cjson     # .dsc + orig + debian tarballs; dpkg-source -x applies the patches
SRC=$(find "$WORK" -maxdepth 1 -type d -name 'cjson-*' | head -n1)
mkdir -p "$DEST"
cp "$SRC/cJSON.c" "$SRC/cJSON.h" "$SRC/LICENSE" "$DEST/"
ls "$WORK"/*.dsc | sed 's|.*/||' > "$DEST/SOURCE"
echo "cJSON source -> $DEST ($(cat "$DEST/SOURCE"))"
