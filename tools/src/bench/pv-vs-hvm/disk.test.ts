import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { checkWritten, csumStep, DATA_LBA, expectedSeqCsum, patchParams, randreadLbas, SECTOR, writeDisk } from './disk.ts';

const SEQREAD = fileURLToPath(new URL('../../../../guests/workloads/seqread.bin', import.meta.url));

describe('workload disks', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-disk-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('patches P1..P3 into the parameter block, little-endian, and refuses images without one', () => {
    const img = new Uint8Array(readFileSync(SEQREAD));
    const p = patchParams(img, [0x12345678, 127]);
    const v = new DataView(p.buffer);
    expect(v.getUint32(4, true)).toBe(0x12345678);
    expect(v.getUint32(8, true)).toBe(127);
    expect(p.subarray(16)).toEqual(img.subarray(16));
    const bare = img.slice();
    bare[2] = 0;
    expect(() => patchParams(bare, [1])).toThrow(/no parameter block/);
    expect(() => patchParams(img, [-1])).toThrow(/not a 32-bit/);
  });

  it('stamps each data sector with its LBA (or its complement) and checks a written range', () => {
    const disk = join(dir, 'd.img');
    writeDisk(disk, SEQREAD, [16, 8], DATA_LBA + 16, 'inverted');
    const bytes = readFileSync(disk);
    expect(bytes.length).toBe((DATA_LBA + 16) * SECTOR);
    expect(bytes.readUInt16LE(DATA_LBA * SECTOR)).toBe(~DATA_LBA & 0xffff);
    expect(checkWritten(disk, 16, 8)).toMatch(/did not reach the image/);
    // what seqwrite leaves: first word = LBA, word i of each 8-sector call's buffer = i
    for (let i = 0; i < 16; i++) {
      const o = (DATA_LBA + i) * SECTOR;
      for (let w = 0; w < 256; w++) bytes.writeUInt16LE(((i % 8) * 256 + w) & 0xffff, o + 2 * w);
      bytes.writeUInt16LE(DATA_LBA + i, o);
    }
    writeFileSync(disk, bytes);
    expect(checkWritten(disk, 16, 8)).toBeNull();
    expect(checkWritten(disk, 16, 4)).toMatch(/word 1/);
  });

  it('checksums and the LCG match the workloads', () => {
    expect(csumStep(0x8001, 1)).toBe(0x0004);
    expect(expectedSeqCsum(1)).toBe(DATA_LBA);
    expect(expectedSeqCsum(2)).toBe(((DATA_LBA << 1) + DATA_LBA + 1) & 0xffff);
    // x1 = 1 * 25173 + 13849 = 39022 -> block (39022 >> 3) & 0xff = 4877 & 0xff = 0x0d -> LBA 64 + 8 * 0x0d
    expect(randreadLbas(1, 0xff, 1)).toEqual([DATA_LBA + 8 * 0x0d]);
    expect(randreadLbas(100, 0xff, 1).every((l) => l >= DATA_LBA && l < DATA_LBA + 256 * 8 && (l - DATA_LBA) % 8 === 0)).toBe(true);
  });
});
