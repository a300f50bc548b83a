/**
 * The raw disk image behind one vbd: a file of 512-byte sectors. Vectored reads and writes land
 * directly in the segments' scratch pages (one system call per request), `flush` is fdatasync
 * (BLKIF_OP_FLUSH_DISKCACHE: acknowledged writes are on disk), and `discard` writes zeroes
 * (Node has no fallocate(PUNCH_HOLE); reads of a discarded range return zeroes either way).
 */
import { closeSync, constants, fdatasyncSync, fstatSync, openSync, readSync, readvSync, writeSync, writevSync } from 'node:fs';
import { preadvInto, pwritevFrom } from '@xenlab/ring-buffers';

export const SECTOR_SIZE = 512;

/** What blkback needs from a disk; `DiskImage` is the file-backed one, tests may substitute. */
export interface BlockDisk {
  readonly sectors: number;
  readonly readOnly: boolean;
  /** Fills `buffers` (each a multiple of 512 bytes) from consecutive sectors starting at `sector`. */
  readv(buffers: readonly Uint8Array[], sector: number): void;
  writev(buffers: readonly Uint8Array[], sector: number): void;
  /**
   * Optional, for blkback's hot path: the same as readv/writev for `count` ranges of one buffer,
   * given as (byteOffset, length) pairs in `iov` (no view per range).
   */
  readRanges?(buffer: ArrayBufferLike, iov: Float64Array, count: number, sector: number): void;
  writeRanges?(buffer: ArrayBufferLike, iov: Float64Array, count: number, sector: number): void;
  flush(): void;
  discard(sector: number, count: number): void;
}

export class DiskImage implements BlockDisk {
  private fd: number;
  readonly sectors: number;
  readonly sizeBytes: number;

  private constructor(fd: number, readonly path: string, readonly readOnly: boolean) {
    this.fd = fd;
    this.sizeBytes = fstatSync(fd).size;
    this.sectors = Math.floor(this.sizeBytes / SECTOR_SIZE);
  }

  /**
   * Opens an image file; throws the fs error (ENOENT, EACCES) for the caller to report. With
   * O_NOATIME where the file allows it (its owner, or root): a guest's reads do not update the
   * image's access time (~10% of a 4 KiB read's cost).
   */
  static open(path: string, opts: { readOnly?: boolean } = {}): DiskImage {
    const readOnly = opts.readOnly ?? false;
    const mode = readOnly ? constants.O_RDONLY : constants.O_RDWR;
    let fd: number;
    try {
      fd = openSync(path, mode | constants.O_NOATIME);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
      fd = openSync(path, mode);
    }
    return new DiskImage(fd, path, readOnly);
  }

  readv(buffers: readonly Uint8Array[], sector: number): void {
    let want = 0;
    for (const b of buffers) want += b.byteLength;
    // One buffer (a random 4 KiB read, a coalesced run): pread, a little cheaper than preadv.
    const got = buffers.length === 1 ? readSync(this.fd, buffers[0]!, 0, want, sector * SECTOR_SIZE) : readvSync(this.fd, buffers as Uint8Array[], sector * SECTOR_SIZE);
    this.expectAll('read', got, want, sector);
  }

  writev(buffers: readonly Uint8Array[], sector: number): void {
    if (this.readOnly) throw new Error(`${this.path} is read-only`);
    let want = 0;
    for (const b of buffers) want += b.byteLength;
    const put = buffers.length === 1 ? writeSync(this.fd, buffers[0]!, 0, want, sector * SECTOR_SIZE) : writevSync(this.fd, buffers as Uint8Array[], sector * SECTOR_SIZE);
    this.expectAll('write', put, want, sector);
  }

  readRanges(buffer: ArrayBufferLike, iov: Float64Array, count: number, sector: number): void {
    let want = 0;
    for (let i = 0; i < count; i++) want += iov[2 * i + 1]!;
    const got = preadvInto(this.fd, buffer, iov, count, sector * SECTOR_SIZE);
    this.expectAll('read', got, want, sector);
  }

  writeRanges(buffer: ArrayBufferLike, iov: Float64Array, count: number, sector: number): void {
    if (this.readOnly) throw new Error(`${this.path} is read-only`);
    let want = 0;
    for (let i = 0; i < count; i++) want += iov[2 * i + 1]!;
    const put = pwritevFrom(this.fd, buffer, iov, count, sector * SECTOR_SIZE);
    this.expectAll('write', put, want, sector);
  }

  private expectAll(what: 'read' | 'write', done: number, want: number, sector: number): void {
    if (done !== want) throw new Error(`short ${what}: ${done} of ${want} bytes at sector ${sector} of ${this.path}`);
  }

  flush(): void {
    if (!this.readOnly) fdatasyncSync(this.fd);
  }

  discard(sector: number, count: number): void {
    const chunk = new Uint8Array(Math.min(count, 2048) * SECTOR_SIZE);
    for (let done = 0; done < count; ) {
      const n = Math.min(count - done, 2048);
      this.writev([chunk.subarray(0, n * SECTOR_SIZE)], sector + done);
      done += n;
    }
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
