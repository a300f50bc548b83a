#!/usr/bin/env bash
# Rebuild the xenlab virtual BIOS image (bios.bin, 64 KiB, loaded at F0000h) from bios.asm.
# Needs nasm (Debian: apt-get install -y nasm). The image is checked in; a test assembles the
# source again and fails if the two differ, so run this after every change to bios.asm.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v nasm >/dev/null; then
  echo "build.sh: nasm is not installed (apt-get install -y nasm); bios.bin was not rebuilt" >&2
  exit 1
fi
nasm -f bin -O9 -Werror -o bios.bin.tmp bios.asm
size=$(stat -c %s bios.bin.tmp)
if [ "$size" -ne 65536 ]; then
  rm -f bios.bin.tmp
  echo "build.sh: bios.bin would be $size bytes, expected 65536" >&2
  exit 1
fi
mv bios.bin.tmp bios.bin
echo "bios.bin rebuilt ($(sha256sum bios.bin | cut -c1-16))"
