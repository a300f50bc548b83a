/**
 * Guest memory and disk images for the device models: a `DmaMemory` over a plain buffer (tests,
 * and the shape qemu-dm gets once it maps the guest's frames), and two `BlockImage`s — a file on
 * the host (what `disk = [...]` in xl.cfg names) and an in-memory image for tests.
 */
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { SECTOR_SIZE, type BlockImage, type DmaMemory } from './types.ts';

/** Guest RAM from physical address 0 to `ram.length`; everything above is not RAM. */
export class FlatDmaMemory implements DmaMemory {
  constructor(readonly ram: Uint8Array) {}

  read(gpa: number, length: number): Uint8Array | null {
    if (!inRange(gpa, length, this.ram.length)) return null;
    return this.ram.slice(gpa, gpa + length);
  }

  write(gpa: number, data: Uint8Array): boolean {
    if (!inRange(gpa, data.length, this.ram.length)) return false;
    this.ram.set(data, gpa);
    return true;
  }
}

function inRange(gpa: number, length: number, size: number): boolean {
  return Number.isInteger(gpa) && Number.isInteger(length) && gpa >= 0 && length >= 0 && gpa + length <= size;
}

/** A disk image held in memory (tests, benchmarks). */
export class MemoryBlockImage implements BlockImage {
  readonly bytes: Uint8Array;
  constructor(bytesOrSectors: Uint8Array | number, readonly readOnly = false) {
    this.bytes = typeof bytesOrSectors === 'number' ? new Uint8Array(bytesOrSectors * SECTOR_SIZE) : bytesOrSectors;
    if (this.bytes.length % SECTOR_SIZE !== 0) throw new Error(`disk image: ${this.bytes.length} bytes is not a whole number of 512-byte sectors`);
  }
  get sectors(): number {
    return this.bytes.length / SECTOR_SIZE;
  }
  read(lba: number, count: number): Uint8Array {
    return this.bytes.slice(lba * SECTOR_SIZE, (lba + count) * SECTOR_SIZE);
  }
  write(lba: number, data: Uint8Array): void {
    this.bytes.set(data, lba * SECTOR_SIZE);
  }
}

/** A raw disk image file on the host, read and written with positional I/O. */
export class FileBlockImage implements BlockImage {
  readonly sectors: number;
  private fd: number;
  constructor(readonly path: string, readonly readOnly = false) {
    this.fd = openSync(path, readOnly ? 'r' : 'r+');
    this.sectors = Math.floor(fstatSync(this.fd).size / SECTOR_SIZE);
  }
  read(lba: number, count: number): Uint8Array {
    const buf = new Uint8Array(count * SECTOR_SIZE);
    readSync(this.fd, buf, 0, buf.length, lba * SECTOR_SIZE);
    return buf;
  }
  write(lba: number, data: Uint8Array): void {
    writeSync(this.fd, data, 0, data.length, lba * SECTOR_SIZE);
  }
  close(): void {
    closeSync(this.fd);
  }
}

/** Byte buffers in snapshots travel as base64 strings (plain JSON, compact). */
export function bytesToB64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
}
export function b64ToBytes(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'base64'));
}
