#!/usr/bin/env bash
# Makes guests/diskex-boot.img: diskex.bin at LBA 0 of a 4 MiB raw image (for diskex-boot.cfg).
set -euo pipefail
cd "$(dirname "$0")"
rm -f diskex-boot.img
cp diskex.bin diskex-boot.img
truncate -s 4M diskex-boot.img
echo "guests/diskex-boot.img"
