/**
 * blkback's parse/validate half: turns the private copy of one ring slot (io/blkif.h,
 * `blkif_request` / `blkif_request_discard`) into a checked `BlkRequest`, or into the status
 * the frontend gets back and the reason dom0 logs. Nothing here touches the ring, the disk or a
 * grant; execute (blkback.ts) runs only what this accepted. Follows the checks Linux's
 * xen-blkback makes (segment count, sector bounds within a page, sectors past the end), in our
 * own words: see docs/pv-disk-request.md.
 */
import {
  BLKIF_MAX_SEGMENTS_PER_REQUEST,
  BLKIF_OP,
  BLKIF_RSP,
  blkifRequest,
  blkifRequestDiscard,
  blkifSegment,
} from '@xenlab/ring-buffers';
import { GrantRef } from '@xenlab/xen-public';

export const SECTORS_PER_PAGE = 4096 / 512;

export interface BlkSegment {
  readonly gref: GrantRef;
  /** First and last 512-byte sector within the granted page, inclusive, 0..7. */
  readonly firstSect: number;
  readonly lastSect: number;
}

export type BlkRequest =
  | { readonly kind: 'rw'; readonly op: 'read' | 'write'; readonly id: bigint; readonly operation: number; readonly handle: number; readonly sector: number; readonly nrSectors: number; readonly segments: readonly BlkSegment[] }
  | { readonly kind: 'flush'; readonly id: bigint; readonly operation: number }
  | { readonly kind: 'discard'; readonly id: bigint; readonly operation: number; readonly sector: number; readonly nrSectors: number; readonly secure: boolean };

/** A request refused before execution: the response it gets and why. */
export interface BlkRejected {
  readonly kind: 'rejected';
  readonly id: bigint;
  readonly operation: number;
  readonly status: typeof BLKIF_RSP.ERROR | typeof BLKIF_RSP.EOPNOTSUPP;
  readonly reason: string;
}

/** What the device offers (mirrors the feature keys it published). */
export interface BlkDeviceLimits {
  readonly sectors: number;
  readonly readOnly: boolean;
  readonly flush: boolean;
  readonly discard: boolean;
}

const NAMES: Record<number, string> = Object.fromEntries(Object.entries(BLKIF_OP).map(([k, v]) => [v, k]));
export const opName = (op: number): string => NAMES[op] ?? `op ${op}`;

/**
 * Parses and validates one request from `slot` (a private copy; read each field once).
 * Bad operation codes and malformed requests get BLKIF_RSP_ERROR; operations this backend
 * knows but did not advertise get BLKIF_RSP_EOPNOTSUPP.
 */
export function parseRequest(slot: DataView, limits: BlkDeviceLimits): BlkRequest | BlkRejected {
  const req = blkifRequest.read(slot, 0);
  const { id, operation } = req;
  const reject = (status: BlkRejected['status'], reason: string): BlkRejected => ({ kind: 'rejected', id, operation, status, reason });

  switch (operation) {
    case BLKIF_OP.READ:
    case BLKIF_OP.WRITE: {
      const write = operation === BLKIF_OP.WRITE;
      if (write && limits.readOnly) return reject(BLKIF_RSP.ERROR, 'write to a read-only device');
      const n = req.nrSegments;
      if (n === 0 || n > BLKIF_MAX_SEGMENTS_PER_REQUEST) {
        return reject(BLKIF_RSP.ERROR, `nr_segments ${n} (expected 1..${BLKIF_MAX_SEGMENTS_PER_REQUEST})`);
      }
      const segments: BlkSegment[] = [];
      let nrSectors = 0;
      for (let i = 0; i < n; i++) {
        const s = blkifSegment.read(slot, blkifRequest.offsetOf('seg', i));
        if (s.lastSect >= SECTORS_PER_PAGE || s.firstSect > s.lastSect) {
          return reject(BLKIF_RSP.ERROR, `segment ${i}: sectors ${s.firstSect}..${s.lastSect} are not within a page (0..${SECTORS_PER_PAGE - 1})`);
        }
        segments.push({ gref: GrantRef(s.gref), firstSect: s.firstSect, lastSect: s.lastSect });
        nrSectors += s.lastSect - s.firstSect + 1;
      }
      const sector = req.sectorNumber;
      if (!Number.isSafeInteger(sector) || sector + nrSectors > limits.sectors) {
        return reject(BLKIF_RSP.ERROR, `sectors ${sector}..${sector + nrSectors - 1} are past the end of the disk (${limits.sectors} sectors)`);
      }
      return { kind: 'rw', op: write ? 'write' : 'read', id, operation, handle: req.handle, sector, nrSectors, segments };
    }
    case BLKIF_OP.FLUSH_DISKCACHE:
      if (!limits.flush) return reject(BLKIF_RSP.EOPNOTSUPP, 'flush not offered (feature-flush-cache=0)');
      return { kind: 'flush', id, operation };
    case BLKIF_OP.DISCARD: {
      if (!limits.discard) return reject(BLKIF_RSP.EOPNOTSUPP, 'discard not offered (feature-discard=0)');
      if (limits.readOnly) return reject(BLKIF_RSP.ERROR, 'discard on a read-only device');
      const d = blkifRequestDiscard.read(slot, 0);
      const sector = d.sectorNumber;
      const count = d.nrSectors;
      if (!Number.isSafeInteger(sector) || !Number.isSafeInteger(count) || sector + count > limits.sectors) {
        return reject(BLKIF_RSP.ERROR, `discard of ${count} sectors at ${sector} is past the end of the disk (${limits.sectors} sectors)`);
      }
      return { kind: 'discard', id, operation, sector, nrSectors: count, secure: (d.flag & 1) !== 0 };
    }
    case BLKIF_OP.WRITE_BARRIER:
    case BLKIF_OP.RESERVED_1:
    case BLKIF_OP.INDIRECT:
      return reject(BLKIF_RSP.EOPNOTSUPP, `${opName(operation)} is not supported by this backend`);
    default:
      return reject(BLKIF_RSP.ERROR, `unknown operation ${operation}`);
  }
}
