/**
 * Test helpers: a frontend that writes raw request slots (so tests can send anything, including
 * garbage), a granting guest with real v1 grant frames over plain memory, and a disk image file
 * with a known pattern. Used by blkback's unit and hostile-frontend tests.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BLKIF_ENTRY_BYTES, blkifRequest, blkifRequestDiscard, blkifResponse, blkifSegment, FrontRing } from '@xenlab/ring-buffers';
import { DomId, Gfn, GrantFrame, GrantRef } from '@xenlab/xen-public';
import type { GrantingDomain } from './in-memory-grant-table.ts';

export const GUEST = DomId(7);
export const DOM0 = DomId(0);

/** A guest with `pages` pages of memory (gfn i = page i) and one grant frame. */
export class FakeGuest implements GrantingDomain {
  readonly domid = GUEST;
  readonly memory: Uint8Array;
  readonly frames: GrantFrame[];
  private nextRef = 8;

  constructor(pages = 32) {
    this.memory = new Uint8Array(pages * 4096);
    this.frames = [new GrantFrame(new ArrayBuffer(4096), 0)];
  }

  page(gfn: number): Uint8Array | undefined {
    if (!Number.isInteger(gfn) || gfn < 0 || (gfn + 1) * 4096 > this.memory.byteLength) return undefined;
    return this.memory.subarray(gfn * 4096, (gfn + 1) * 4096);
  }

  grant(gfn: number, readonly = false, to = DOM0): GrantRef {
    const ref = this.nextRef++;
    this.frames[0]!.grant(ref, to, Gfn(gfn), readonly);
    return GrantRef(ref);
  }
}

export interface RawSegment { gref: number; firstSect: number; lastSect: number }

/** Writes requests straight into the shared ring, no checks. */
export class RawFront {
  readonly ring: FrontRing;
  constructor(readonly buffer: ArrayBuffer, offset = 0) {
    this.ring = FrontRing.init(buffer, offset, 4096, BLKIF_ENTRY_BYTES);
  }

  put(r: { operation: number; id: bigint; sector?: number; nrSegments?: number; handle?: number; segs?: RawSegment[] }): void {
    const off = this.ring.nextRequestOffset();
    new Uint8Array(this.ring.view.buffer, this.ring.view.byteOffset + off, BLKIF_ENTRY_BYTES).fill(0);
    const segs = r.segs ?? [];
    blkifRequest.write(this.ring.view, off, {
      operation: r.operation, nrSegments: r.nrSegments ?? segs.length, handle: r.handle ?? 51712, id: r.id, sectorNumber: r.sector ?? 0,
    });
    segs.slice(0, 11).forEach((s, i) => blkifSegment.write(this.ring.view, off + blkifRequest.offsetOf('seg', i), s));
    this.ring.produced();
  }

  putDiscard(id: bigint, sector: number, nrSectors: number, flag = 0): void {
    const off = this.ring.nextRequestOffset();
    blkifRequestDiscard.write(this.ring.view, off, { operation: 5, flag, handle: 51712, id, sectorNumber: sector, nrSectors });
    this.ring.produced();
  }

  /** Publishes; true if the backend asked to be kicked. */
  push(): boolean {
    return this.ring.pushRequests();
  }

  responses(): Array<{ id: bigint; operation: number; status: number }> {
    const out = [];
    let n;
    while ((n = this.ring.unconsumedResponses()) > 0) {
      for (let i = 0; i < n; i++) {
        out.push(blkifResponse.read(this.ring.view, this.ring.responseOffset()));
        this.ring.consumed();
      }
    }
    return out;
  }
}

/** A disk image of `sectors` sectors where byte i of sector s is (s * 31 + i) & 0xff. */
export function patternedImage(sectors: number, dir = mkdtempSync(join(tmpdir(), 'blkback-'))): { path: string; bytes: Uint8Array } {
  const bytes = new Uint8Array(sectors * 512);
  for (let s = 0; s < sectors; s++) for (let i = 0; i < 512; i++) bytes[s * 512 + i] = (s * 31 + i) & 0xff;
  const path = join(dir, 'disk.img');
  writeFileSync(path, bytes);
  return { path, bytes };
}
