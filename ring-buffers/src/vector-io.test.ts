import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SharedMemory } from './shared-memory.ts';
import { preadvInto, pwritevFrom } from './vector-io.ts';

describe('vectored file I/O into ranges of one buffer', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'xenlab-vio-'));
    file = join(dir, 'f');
    writeFileSync(file, Uint8Array.from({ length: 16384 }, (_, i) => (i * 7 + 3) & 0xff));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads consecutive file bytes into the ranges in order, in a shared mapping or a plain buffer', () => {
    const shm = SharedMemory.create(join(dir, 'mem'), 4 * 4096);
    try {
      for (const buffer of [shm.buffer, new ArrayBuffer(4 * 4096)]) {
        const fd = openSync(file, 'r');
        // 1000 bytes at 5000, then 24 at 100, then 3072 at 8192: 4096 bytes from file offset 512.
        const iov = Float64Array.of(5000, 1000, 100, 24, 8192, 3072);
        expect(preadvInto(fd, buffer, iov, 3, 512)).toBe(4096);
        closeSync(fd);
        const file_ = readFileSync(file);
        const mem = new Uint8Array(buffer);
        expect(Buffer.from(mem.subarray(5000, 6000)).equals(file_.subarray(512, 1512))).toBe(true);
        expect(Buffer.from(mem.subarray(100, 124)).equals(file_.subarray(1512, 1536))).toBe(true);
        expect(Buffer.from(mem.subarray(8192, 11264)).equals(file_.subarray(1536, 4608))).toBe(true);
        expect(mem[4999]).toBe(0);
      }
    } finally {
      shm.close();
    }
  });

  it('writes the ranges to consecutive file bytes; only `count` pairs are used', () => {
    const buffer = new ArrayBuffer(8192);
    new Uint8Array(buffer).fill(0xaa, 0, 512).fill(0xbb, 4096, 4096 + 512);
    const fd = openSync(file, 'r+');
    expect(pwritevFrom(fd, buffer, Float64Array.of(4096, 512, 0, 512, 9999, 9999), 2, 1024)).toBe(1024);
    closeSync(fd);
    const f = readFileSync(file);
    expect(f.subarray(1024, 1536).every((b) => b === 0xbb)).toBe(true);
    expect(f.subarray(1536, 2048).every((b) => b === 0xaa)).toBe(true);
    expect(f[2048]).toBe((2048 * 7 + 3) & 0xff);
  });

  it('a read past the end of the file is short, not an error', () => {
    const fd = openSync(file, 'r');
    expect(preadvInto(fd, new ArrayBuffer(8192), Float64Array.of(0, 8192), 1, 12288)).toBe(4096);
    closeSync(fd);
  });

  it('rejects a range outside the buffer, a bad count or position before any I/O, and reports a failed call with its errno', () => {
    const fd = openSync(file, 'r+');
    const buffer = new ArrayBuffer(4096);
    expect(() => preadvInto(fd, buffer, Float64Array.of(4000, 200), 1, 0)).toThrow(RangeError);
    expect(() => preadvInto(fd, buffer, Float64Array.of(-1, 10), 1, 0)).toThrow(RangeError);
    expect(() => pwritevFrom(fd, buffer, Float64Array.of(0, 4096), 2, 0)).toThrow(RangeError);
    expect(() => pwritevFrom(fd, buffer, Float64Array.of(0, 4096), 0, 0)).toThrow(RangeError);
    expect(() => preadvInto(fd, buffer, Float64Array.of(0, 4096), 1, -512)).toThrow(RangeError);
    expect(() => preadvInto(fd, buffer, new Uint32Array(2) as unknown as Float64Array, 1, 0)).toThrow(TypeError);
    expect(readFileSync(file)[0]).toBe(3); // nothing was written by the rejected calls
    closeSync(fd);
    let err: NodeJS.ErrnoException | undefined;
    try {
      preadvInto(fd, buffer, Float64Array.of(0, 4096), 1, 0);
    } catch (e) {
      err = e as NodeJS.ErrnoException;
    }
    expect(err?.message).toMatch(/preadv: Bad file descriptor/);
    expect(err?.errno).toBe(9);
  });
});
