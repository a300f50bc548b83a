/**
 * Disk images for the workloads (guests/workloads/): the workload's image in the first sectors
 * with its parameter block patched (guests/workloads/bench.inc: 'XB' at offset 2, then P1..P3 as
 * little-endian dwords at 4, 8, 12), and the data area from LBA 64 on with every sector's first
 * word stamped with its LBA's low 16 bits, so a workload's checksum can be computed here.
 */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';

export const SECTOR = 512;
export const DATA_LBA = 64;
const CHUNK_SECTORS = 2048;

/** The workload image with P1..P3 written into its parameter block (same bytes for PV and HVM). */
export function patchParams(image: Uint8Array, params: readonly number[]): Uint8Array {
  if (image.length < SECTOR || image[510] !== 0x55 || image[511] !== 0xaa) throw new Error('workload image: no boot signature (55AA at byte 510)');
  if (image[2] !== 0x58 || image[3] !== 0x42) throw new Error("workload image: no parameter block ('XB' at offset 2); rebuild it with guests/build.sh");
  if (params.length > 3) throw new Error(`workload image: at most 3 parameters (got ${params.length})`);
  const out = image.slice();
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  params.forEach((p, i) => {
    if (!(Number.isInteger(p) && p >= 0 && p <= 0xffffffff)) throw new Error(`workload parameter P${i + 1} = ${p} is not a 32-bit unsigned integer`);
    view.setUint32(4 + i * 4, p, true);
  });
  return out;
}

/** Writes a disk of `sectors` sectors: the patched image, zeroes up to LBA 64, the stamped data area. */
export function writeDisk(path: string, imagePath: string, params: readonly number[], sectors: number): void {
  const image = patchParams(new Uint8Array(readFileSync(imagePath)), params);
  if (image.length > DATA_LBA * SECTOR) throw new Error(`workload image ${imagePath} is larger than ${DATA_LBA} sectors`);
  if (sectors < DATA_LBA + 1) throw new Error(`disk of ${sectors} sectors is too small (needs more than ${DATA_LBA})`);
  const fd = openSync(path, 'w');
  try {
    const head = new Uint8Array(DATA_LBA * SECTOR);
    head.set(image, 0);
    writeSync(fd, head, 0, head.length, 0);
    const chunk = new Uint8Array(CHUNK_SECTORS * SECTOR);
    for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 7 + 3) & 0xff;
    for (let lba = DATA_LBA; lba < sectors; lba += CHUNK_SECTORS) {
      const n = Math.min(CHUNK_SECTORS, sectors - lba);
      for (let k = 0; k < n; k++) {
        chunk[k * SECTOR] = (lba + k) & 0xff;
        chunk[k * SECTOR + 1] = ((lba + k) >> 8) & 0xff;
      }
      writeSync(fd, chunk, 0, n * SECTOR, lba * SECTOR);
    }
  } finally {
    closeSync(fd);
  }
}

/** The workloads' checksum step: rol(sum, 1) + word, 16 bits. */
export function csumStep(sum: number, word: number): number {
  return ((((sum << 1) | (sum >>> 15)) & 0xffff) + word) & 0xffff;
}

/** csum of sequential sectors from LBA 64 (seqread, seqwrite): the first words are the LBAs. */
export function expectedSeqCsum(sectors: number): number {
  let s = 0;
  for (let i = 0; i < sectors; i++) s = csumStep(s, (DATA_LBA + i) & 0xffff);
  return s;
}

/** The LBAs randread visits: x = x * 25173 + 13849 (mod 2^16), block = (x >> 3) & mask. */
export function randreadLbas(ops: number, mask: number, seed: number): number[] {
  const out: number[] = [];
  let x = seed & 0xffff;
  for (let i = 0; i < ops; i++) {
    x = (Math.imul(x, 25173) + 13849) & 0xffff;
    out.push(DATA_LBA + ((x >> 3) & mask) * 8);
  }
  return out;
}

export function expectedRandCsum(ops: number, mask: number, seed: number): number {
  return randreadLbas(ops, mask, seed).reduce((s, lba) => csumStep(s, lba & 0xffff), 0);
}

/** First words of the sectors of a disk range (to check seqwrite's result on the image). */
export function firstWords(path: string, lba: number, count: number): number[] {
  const buf = readFileSync(path);
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const o = (lba + i) * SECTOR;
    out.push(buf[o]! | (buf[o + 1]! << 8));
  }
  return out;
}
