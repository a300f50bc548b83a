/**
 * io/blkif.h: the block-device ring's request and response (x86_64 ABI). Numbers are pinned by
 * blkif.test.ts against the fact sheet: a request is 112 bytes, 32 fit a 4 KiB ring.
 */
import { defineLayout } from '../layout.ts';
import { ringEntries } from '../ring.ts';

export const BLKIF_OP = {
  READ: 0,
  WRITE: 1,
  WRITE_BARRIER: 2,
  FLUSH_DISKCACHE: 3,
  RESERVED_1: 4,
  DISCARD: 5,
  INDIRECT: 6,
} as const;
export type BlkifOp = (typeof BLKIF_OP)[keyof typeof BLKIF_OP];

export const BLKIF_RSP = { OKAY: 0, ERROR: -1, EOPNOTSUPP: -2 } as const;
export type BlkifRsp = (typeof BLKIF_RSP)[keyof typeof BLKIF_RSP];

export const BLKIF_MAX_SEGMENTS_PER_REQUEST = 11;
export const BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST = 8;
export const BLKIF_DISCARD_SECURE = 1;
export const VDISK = { CDROM: 0x1, REMOVABLE: 0x2, READONLY: 0x4 } as const;

export const blkifSegment = defineLayout('blkif_request_segment', 8, {
  gref: { offset: 0, type: 'u32', writer: 'front', doc: 'grant reference of the data page' },
  firstSect: { offset: 4, type: 'u8', writer: 'front', unit: 'sector in page', doc: 'inclusive' },
  lastSect: { offset: 5, type: 'u8', writer: 'front', unit: 'sector in page', doc: 'inclusive' },
});

export const blkifRequest = defineLayout('blkif_request', 112, {
  operation: { offset: 0, type: 'u8', writer: 'front', doc: 'BLKIF_OP_*' },
  nrSegments: { offset: 1, type: 'u8', writer: 'front', doc: '1..11' },
  handle: { offset: 2, type: 'u16', writer: 'front', doc: 'vdev handle' },
  id: { offset: 8, type: 'id64', writer: 'front', doc: 'opaque, echoed in the response' },
  sectorNumber: { offset: 16, type: 'u64', writer: 'front', unit: 'sectors' },
  seg: { offset: 24, count: BLKIF_MAX_SEGMENTS_PER_REQUEST, elem: blkifSegment, writer: 'front' },
});

export const blkifRequestDiscard = defineLayout('blkif_request_discard', 32, {
  operation: { offset: 0, type: 'u8', writer: 'front', doc: 'BLKIF_OP_DISCARD' },
  flag: { offset: 1, type: 'u8', writer: 'front', doc: 'BLKIF_DISCARD_SECURE' },
  handle: { offset: 2, type: 'u16', writer: 'front' },
  id: { offset: 8, type: 'id64', writer: 'front' },
  sectorNumber: { offset: 16, type: 'u64', writer: 'front', unit: 'sectors' },
  nrSectors: { offset: 24, type: 'u64', writer: 'front', unit: 'sectors' },
});

/** One u32 grant reference, as an array element. */
export const grantRefLayout = defineLayout('grant_ref_t', 4, {
  ref: { offset: 0, type: 'u32', writer: 'front' },
});

export const blkifRequestIndirect = defineLayout('blkif_request_indirect', 64, {
  operation: { offset: 0, type: 'u8', writer: 'front', doc: 'BLKIF_OP_INDIRECT' },
  indirectOp: { offset: 1, type: 'u8', writer: 'front', doc: 'READ or WRITE' },
  nrSegments: { offset: 2, type: 'u16', writer: 'front' },
  id: { offset: 8, type: 'id64', writer: 'front' },
  sectorNumber: { offset: 16, type: 'u64', writer: 'front', unit: 'sectors' },
  handle: { offset: 24, type: 'u16', writer: 'front' },
  indirectGrefs: { offset: 28, count: BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST, elem: grantRefLayout, writer: 'front', doc: 'grant refs of the indirect pages' },
});

export const blkifResponse = defineLayout('blkif_response', 16, {
  id: { offset: 0, type: 'id64', writer: 'back', doc: 'copied from the request' },
  operation: { offset: 8, type: 'u8', writer: 'back', doc: 'copied from the request' },
  status: { offset: 10, type: 'i16', writer: 'back', doc: 'BLKIF_RSP_*' },
});

/**
 * Byte offsets of the request and response fields, for hot paths that read and write slots with
 * a DataView directly (no object per request); taken from the layouts above, so they cannot drift.
 */
export const BLKIF_OFFSETS = {
  reqOperation: blkifRequest.offsetOf('operation'),
  reqNrSegments: blkifRequest.offsetOf('nrSegments'),
  reqHandle: blkifRequest.offsetOf('handle'),
  reqId: blkifRequest.offsetOf('id'),
  reqSector: blkifRequest.offsetOf('sectorNumber'),
  reqSeg0: blkifRequest.offsetOf('seg', 0),
  segBytes: blkifSegment.size,
  segGref: blkifSegment.offsetOf('gref'),
  segFirst: blkifSegment.offsetOf('firstSect'),
  segLast: blkifSegment.offsetOf('lastSect'),
  rspId: blkifResponse.offsetOf('id'),
  rspOperation: blkifResponse.offsetOf('operation'),
  rspStatus: blkifResponse.offsetOf('status'),
} as const;

/** A ring slot holds the larger of request and response. */
export const BLKIF_ENTRY_BYTES = Math.max(blkifRequest.size, blkifResponse.size);
export const BLKIF_RING_ENTRIES_PER_PAGE = ringEntries(4096, BLKIF_ENTRY_BYTES);
