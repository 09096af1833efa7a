# anchor_env.sh - sourced by the bench runners that time PyTorch / onnxruntime (the "anchors").
#
# 1. PyTorch must run on OpenBLAS. Debian's python3-torch calls the system libblas.so.3, and a fresh
#    `apt-get install python3-torch` brings only the netlib *reference* BLAS (libblas3): torch then
#    encodes at ~1.3 sentences/s instead of ~40 and every ratio is 30x wrong. et_anchor_setup installs
#    libopenblas0-pthread when it is missing (as root, with apt-get; otherwise it stops and says so),
#    prints which BLAS torch has loaded (bench/torch_threads.py --blas: the .so mapped into the process,
#    and torch.__config__'s BLAS_INFO), and REFUSES to go on unless it is OpenBLAS.
# 2. Some machines set OPENBLAS_CORETYPE=Haswell and OPENBLAS_L2_SIZE in the environment, which halve
#    OpenBLAS's speed on AVX-512 parts (torch 32x128, 1 thread: 21 -> 41 sentences/s without them). The
#    anchors run without both: every anchor command (timing AND the output checks) is prefixed with
#    "${ANCHOR_ENV[@]}" = env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE, in that command alone (the
#    caller's environment is not changed). et_anchor_setup says what was removed.
# usage: . bench/anchor_env.sh; et_anchor_setup "$PY" [LOGFILE.jsonl]   (appends {"blas":...} to LOGFILE)

ANCHOR_ENV=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)

et_anchor_setup() {
  local py=$1 log=${2:-} here
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  if ! dpkg-query -W -f='${Status}' libopenblas0-pthread 2>/dev/null | grep -q "install ok installed"; then
    if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
      echo "== installing libopenblas0-pthread (PyTorch would otherwise run on the reference BLAS)" >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q libopenblas0-pthread > /dev/null ||
        { echo "anchor set-up: apt-get install libopenblas0-pthread failed" >&2; return 1; }
    else
      echo "anchor set-up: libopenblas0-pthread is not installed and this is not root: install it" \
           "(apt-get install libopenblas0-pthread) so that PyTorch does not run on the reference BLAS" >&2
      return 1
    fi
  fi
  local info rc=0
  info=$("${ANCHOR_ENV[@]}" "$py" "$here/torch_threads.py" --blas --require-openblas) || rc=$?
  echo "== PyTorch's BLAS: $info" >&2
  if [ -n "$log" ] && [ -n "$info" ]; then echo "{\"blas\":$info}" >> "$log"; fi
  if [ $rc -ne 0 ]; then
    echo "anchor set-up: PyTorch does not run on OpenBLAS (see the line above; libblas.so.3 alternative:" \
         "$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || echo '?')). No ratio against it" \
         "is reported: run 'update-alternatives --config libblas.so.3-x86_64-linux-gnu' and pick openblas-pthread." >&2
    return 1
  fi
  echo "== anchors (PyTorch, onnxruntime) run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset in their commands only" \
       "(here: OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-<unset>}, OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-<unset>})" >&2
}
