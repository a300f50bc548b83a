/**
 * A guest for the shim's unit tests: 1 MiB of memory, one grant frame, a blkfront connected to
 * the MemoryBackend test double over a ring page in guest frame 9Fh. Event channels are queued
 * microtasks.
 */
import { BLKIF_ENTRY_BYTES, FrontRing } from '@xenlab/ring-buffers';
import { DomId, Gfn, GrantFrame } from '@xenlab/xen-public';
import { GuestGrantTable } from '../../grant-table.ts';
import { Blkfront, type BlkDiskInfo } from '../blkfront.ts';
import { MemoryBackend } from './memory-backend.ts';

export const DOM0 = DomId(0);
export const RING_GFN = 0x9f;

/**
 * `poolFrames`: with `info.persistent`, blkfront's persistent pool is guest frames 0x60.. (that many);
 * `direct`: how many of the caller's frames it may grant persistently in place.
 */
export function guestWithDisk(sectors = 2048, info: Partial<BlkDiskInfo> = {}, poolFrames = 16, direct = 0) {
  const ram = new Uint8Array(0x100000);
  const pages = Array.from({ length: 256 }, (_, g) => ram.subarray(g * 4096, (g + 1) * 4096));
  const frame = new GrantFrame(new ArrayBuffer(4096), 0);
  const grants = new GuestGrantTable([frame]);
  const ringBuf = ram.buffer as ArrayBuffer;
  const ring = FrontRing.init(ringBuf, RING_GFN * 4096, 4096, BLKIF_ENTRY_BYTES);
  let front!: Blkfront;
  const backend = new MemoryBackend(ringBuf, RING_GFN * 4096, sectors, frame, (g) => pages[g], DOM0, () => queueMicrotask(() => front.handleResponses()));
  front = new Blkfront({
    ring,
    backendDomid: DOM0,
    grants,
    notify: () => queueMicrotask(() => backend.kick()),
    info: { sectors, sectorSize: 512, readOnly: false, cdrom: false, removable: false, flush: true, discard: true, ...info },
    handle: 51712,
    persistent: {
      frames: Array.from({ length: poolFrames }, (_, i) => ({ gfn: Gfn(0x60 + i), bytes: pages[0x60 + i]! })),
      page: (g) => pages[g],
      direct,
    },
  });
  for (let i = 0; i < backend.disk.length; i++) backend.disk[i] = (i * 7 + (i >> 9)) & 0xff;
  return { ram, pages, mem: { pages }, frame, grants, ring, front, backend, bounce: Array.from({ length: 11 }, (_, i) => ({ gfn: Gfn(0x90 + i), bytes: pages[0x90 + i]! })) };
}
