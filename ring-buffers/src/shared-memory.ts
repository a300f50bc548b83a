/**
 * A file mapped MAP_SHARED into this process: xenlab's stand-in for machine memory and for any
 * page two processes share (ARCHITECTURE.md, "Memory"). Every process that opens the same file
 * sees the same bytes; Atomics on the buffer are real atomic instructions across processes.
 */
import { closeSync, ftruncateSync, fstatSync, openSync } from 'node:fs';
import { addon } from './native.ts';

export const PAGE_SIZE = 4096;

export interface OpenOptions {
  writable?: boolean;
  /** Byte offset into the file (multiple of 4096). */
  offset?: number;
  /** Bytes to map; default the rest of the file. */
  length?: number;
}

export class SharedMemory {
  private closed = false;

  private constructor(
    readonly path: string,
    readonly buffer: ArrayBuffer,
    readonly offset: number,
  ) {}

  /** Creates (or truncates) `path` to `size` bytes of zeroes and maps all of it read-write. */
  static create(path: string, size: number): SharedMemory {
    if (!Number.isInteger(size) || size <= 0 || size % PAGE_SIZE !== 0) {
      throw new RangeError(`SharedMemory.create: size ${size} must be a positive multiple of ${PAGE_SIZE}`);
    }
    const fd = openSync(path, 'w+', 0o600);
    try {
      ftruncateSync(fd, size);
      return new SharedMemory(path, addon().map(fd, size, 0, true), 0);
    } finally {
      closeSync(fd);
    }
  }

  /** Maps an existing file (or a page-aligned window of it). */
  static open(path: string, opts: OpenOptions = {}): SharedMemory {
    const writable = opts.writable ?? true;
    const offset = opts.offset ?? 0;
    if (offset % PAGE_SIZE !== 0 || offset < 0) {
      throw new RangeError(`SharedMemory.open: offset ${offset} must be a non-negative multiple of ${PAGE_SIZE}`);
    }
    const fd = openSync(path, writable ? 'r+' : 'r');
    try {
      const fileSize = fstatSync(fd).size;
      const length = opts.length ?? fileSize - offset;
      if (length <= 0 || offset + length > fileSize) {
        throw new RangeError(
          `SharedMemory.open: ${path} is ${fileSize} bytes; cannot map ${length} bytes at offset ${offset}`,
        );
      }
      return new SharedMemory(path, addon().map(fd, length, offset, writable), offset);
    } finally {
      closeSync(fd);
    }
  }

  get size(): number {
    return this.closed ? 0 : this.buffer.byteLength;
  }

  /** Unmaps now. Every view over `buffer` becomes zero-length, so nothing can touch freed memory. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    addon().unmap(this.buffer);
  }
}
