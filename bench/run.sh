#!/usr/bin/env bash
# Side-by-side benchmark: wharf against CNCF distribution (docker-registry) and the machine's
# ceilings. Builds wharf in release, then runs bench/bench.py (Python 3 stdlib, wrk, nginx).
#   bench/run.sh            full workload (about 10 minutes on 2 cores)
#   bench/run.sh --quick    tiny sizes, proves the bench works (CI)
#   bench/run.sh --s3 [--quick]  blob upload/download MiB/s on S3 (moto), bench/s3.py
# Extra arguments go to bench.py (--out FILE writes the markdown table, --reps N).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
target=${CARGO_TARGET_DIR:-target}
if [[ -z ${WHARF_BIN:-} ]]; then
    cargo build --release -p wharf >&2
    WHARF_BIN=$target/release/wharf
fi
script=bench/bench.py
if [[ ${1:-} == --s3 ]]; then
    shift
    script=bench/s3.py
fi
exec python3 "$script" --wharf "$WHARF_BIN" "$@"
