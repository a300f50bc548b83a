#!/usr/bin/env bash
# Rebuilds the guest images from their nasm sources. The images are checked in, so running a
# guest never needs nasm; run this after editing a .asm file (apt-get install -y nasm).
#   guests/build.sh           assemble every *.asm (and workloads/*.asm) into *.bin
#   guests/build.sh --check   assemble into a temp dir and fail if a checked-in image differs
# workloads/ holds the PV vs HVM benchmark programs; they include workloads/bench.inc and lib.inc.
set -euo pipefail
cd "$(dirname "$0")"
command -v nasm >/dev/null || { echo "guests/build.sh: nasm not found (apt-get install -y nasm)" >&2; exit 2; }
out=.
if [ "${1:-}" = "--check" ]; then out=$(mktemp -d); mkdir -p "$out/workloads"; trap 'rm -rf "$out"' EXIT; fi
status=0
for src in *.asm workloads/*.asm; do
  name=${src%.asm}
  nasm -f bin -O0 -w+all -I ./ -I workloads/ -o "$out/$name.bin" "$src"
  if [ "$out" != . ] && ! cmp -s "$out/$name.bin" "$name.bin"; then
    echo "guests/build.sh: $name.bin is stale: rebuild with guests/build.sh" >&2
    status=1
  fi
done
exit $status
