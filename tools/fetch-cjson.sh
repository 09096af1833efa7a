#!/bin/sh
# Fetch Debian's (security-patched) cJSON source for the wasm builds into third_party/cjson.
# Uses a private apt state directory: the system apt configuration is not changed.
# Needs dpkg-dev (dpkg-source). Skips the download if the files are already there (FORCE=1 to refetch).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST="$ROOT/third_party/cjson"
if [ -z "${FORCE:-}" ] && [ -f "$DEST/cJSON.c" ] && [ -f "$DEST/cJSON.h" ] && [ -f "$DEST/SOURCE" ]; then
  echo "cJSON source already in $DEST ($(cat "$DEST/SOURCE"))"
  exit 0
fi
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
