/**
 * Disk images for the workloads (guests/workloads/): the workload's image in the first sectors
 * with its parameter block patched (guests/workloads/bench.inc: 'XB' at offset 2, then P1..P3 as
 * little-endian dwords at 4, 8, 12), and the data area from LBA 64 on with every sector's first
 * word stamped with its LBA's low 16 bits, so a workload's checksum can be computed here.
 */
import { closeSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';

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

/**
 * Writes a disk of `sectors` sectors: the patched image, zeroes up to LBA 64, the data area with
 * each sector's first word = its LBA (low 16 bits), or, with `stamp: 'inverted'`, its complement
 * (so a run of seqwrite, which writes the LBAs, can be told apart from the disk it started on).
 */
export function writeDisk(path: string, imagePath: string, params: readonly number[], sectors: number, stamp: 'lba' | 'inverted' = 'lba'): void {
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
        const w = stamp === 'lba' ? (lba + k) & 0xffff : ~(lba + k) & 0xffff;
        chunk[k * SECTOR] = w & 0xff;
        chunk[k * SECTOR + 1] = w >> 8;
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

/**
 * Checks that `count` sectors from LBA 64 carry their LBA in their first word and seqwrite's
 * fill pattern (word i of its buffer = i, `perCall` sectors a call) after it: what a seqwrite run leaves on the
 * image. Returns the first problem, or null.
 */
export function checkWritten(path: string, count: number, perCall: number): string | null {
  const fd = openSync(path, 'r');
  try {
    const buf = new Uint8Array(CHUNK_SECTORS * SECTOR);
    for (let done = 0; done < count; done += CHUNK_SECTORS) {
      const n = Math.min(CHUNK_SECTORS, count - done);
      readSync(fd, buf, 0, n * SECTOR, (DATA_LBA + done) * SECTOR);
      for (let k = 0; k < n; k++) {
        const i = done + k;
        const o = k * SECTOR;
        const first = buf[o]! | (buf[o + 1]! << 8);
        if (first !== ((DATA_LBA + i) & 0xffff)) return `LBA ${DATA_LBA + i} starts with ${first.toString(16)}h, expected its LBA: the write did not reach the image`;
        // word 1 of the sector: buffer word (sector within the call) * 256 + 1
        const second = buf[o + 2]! | (buf[o + 3]! << 8);
        const want = (((i % perCall) * 256) + 1) & 0xffff;
        if (second !== want) return `LBA ${DATA_LBA + i} word 1 is ${second.toString(16)}h, expected ${want.toString(16)}h`;
      }
    }
    return null;
  } finally {
    closeSync(fd);
  }
}
