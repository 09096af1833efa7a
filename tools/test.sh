#!/usr/bin/env bash
# Run the whole embedtune test suite: native build + CTest.  Usage: tools/test.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
bash "$ROOT/tools/setup.sh"
ctest --test-dir "$ROOT/build" --output-on-failure -j"$(nproc)"
