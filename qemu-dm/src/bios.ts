/**
 * The virtual BIOS image (../bios/bios.asm, assembled to ../bios/bios.bin): 64 KiB that qemu-dm
 * copies into guest memory at F0000h before the vCPU starts, so the reset vector F000:FFF0 is
 * the image's last 16 bytes. See docs/virtual-bios.md.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const BIOS_IMAGE_PATH = fileURLToPath(new URL('../bios/bios.bin', import.meta.url));
export const BIOS_LOAD_ADDRESS = 0xf0000;
export const BIOS_SIZE = 0x10000;

/** Read the BIOS image; throws with the path and the fix if it is missing or the wrong size. */
export function loadBiosImage(path = BIOS_IMAGE_PATH): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new Error(`qemu-dm: cannot read the BIOS image ${path} (${(e as Error).message}); rebuild it with qemu-dm/bios/build.sh`);
  }
  if (bytes.length !== BIOS_SIZE) throw new Error(`qemu-dm: BIOS image ${path} is ${bytes.length} bytes, expected ${BIOS_SIZE}; rebuild it with qemu-dm/bios/build.sh`);
  return bytes;
}
