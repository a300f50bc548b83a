import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileBlockImage, FlatDmaMemory, MemoryBlockImage } from './memory.ts';

describe('disk images and DMA memory', () => {
  it('FileBlockImage reads and writes whole sectors of a host file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xenlab-qemu-dm-'));
    try {
      const path = join(dir, 'disk.img');
      const bytes = new Uint8Array(4 * 512).map((_, i) => i & 0xff);
      writeFileSync(path, bytes);
      const img = new FileBlockImage(path);
      expect(img.sectors).toBe(4);
      expect(img.read(1, 2)).toEqual(bytes.subarray(512, 1536));
      img.write(3, new Uint8Array(512).fill(0xee));
      img.close();
      expect(readFileSync(path).subarray(1536).every((b) => b === 0xee)).toBe(true);
      const ro = new FileBlockImage(path, true);
      expect(ro.readOnly).toBe(true);
      ro.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('MemoryBlockImage refuses partial sectors; FlatDmaMemory refuses anything outside RAM', () => {
    expect(() => new MemoryBlockImage(new Uint8Array(100))).toThrow(/whole number of 512-byte sectors/);
    const mem = new FlatDmaMemory(new Uint8Array(64));
    expect(mem.write(60, new Uint8Array(4))).toBe(true);
    expect(mem.write(61, new Uint8Array(4))).toBe(false);
    expect(mem.read(-1, 1)).toBeNull();
    expect(mem.read(0.5, 1)).toBeNull();
    expect(mem.read(0, 64)?.length).toBe(64);
  });
});
