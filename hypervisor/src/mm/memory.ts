/**
 * memory_op (xen/common/memory.c): populate_physmap / increase_reservation (the balloon "take"),
 * decrease_reservation (the balloon "give back"), current/maximum reservation. Like Xen, a
 * batch stops at the first extent that cannot be done and returns how many were.
 */
import { DOMID_SELF, Gfn, XenError, type Mfn, type Reservation } from '@xenlab/xen-public';
import type { Domain } from '../domain.ts';
import type { Hypervisor } from '../hypervisor.ts';
import { FrameKind } from './frame-table.ts';
import { MAX_GFN } from './p2m.ts';

/** Largest extent order accepted (Xen bounds it by its max order; 2^9 = 2 MiB here). */
export const MAX_EXTENT_ORDER = 9;
/** Largest batch in one call; a guest passing more gets EINVAL rather than tying up the host. */
export const MAX_EXTENTS_PER_CALL = 1 << 16;

function checkReservation(r: Reservation): number {
  const order = r.extent_order ?? 0;
  if (!Number.isInteger(order) || order < 0 || order > MAX_EXTENT_ORDER) throw new XenError('EINVAL', `extent_order ${order}`);
  if (!Array.isArray(r.extent_start) || r.extent_start.length > MAX_EXTENTS_PER_CALL) {
    throw new XenError('EINVAL', 'extent_start must be an array of at most 65536 frames');
  }
  return order;
}

/** populate_physmap / increase_reservation: back each GFN extent with fresh frames. */
export function populatePhysmap(hv: Hypervisor, caller: Domain, r: Reservation): { nr_done: number; extent_start: number[] } {
  const d = hv.lookupDomain(caller, r.domid ?? DOMID_SELF);
  const order = checkReservation(r);
  const pages = 1 << order;
  const mfns: number[] = [];
  let done = 0;
  for (const base of r.extent_start) {
    if (!Number.isInteger(base) || base < 0 || base + pages - 1 > MAX_GFN || base % pages !== 0) break;
    if (d.totPages + pages > d.maxPages) break;
    let clash = false;
    for (let i = 0; i < pages; i++) if (d.p2m.lookup(Gfn(base + i)) !== undefined) clash = true;
    if (clash) break;
    if (hv.frames.freeFrames < pages) break;
    for (let i = 0; i < pages; i++) {
      const mfn = hv.allocFrame(d, FrameKind.ram)!;
      d.p2m.set(Gfn(base + i), mfn);
      hv.frames.setGfn(mfn, Gfn(base + i));
      d.totPages++;
      if (i === 0) mfns.push(mfn);
    }
    done++;
  }
  // For a PV guest Xen writes the MFN of each extent back into extent_start.
  return { nr_done: done, extent_start: mfns };
}

/** decrease_reservation: give back each GFN extent; frames others still map stay alive. */
export function decreaseReservation(hv: Hypervisor, caller: Domain, r: Reservation): { nr_done: number } {
  const d = hv.lookupDomain(caller, r.domid ?? DOMID_SELF);
  const order = checkReservation(r);
  const pages = 1 << order;
  let done = 0;
  for (const base of r.extent_start) {
    if (!Number.isInteger(base) || base < 0) break;
    const frames: Mfn[] = [];
    for (let i = 0; i < pages; i++) {
      const m = d.p2m.lookup(Gfn(base + i));
      if (m === undefined) break;
      frames.push(m);
    }
    if (frames.length !== pages) break;
    for (let i = 0; i < pages; i++) {
      d.p2m.remove(Gfn(base + i));
      d.totPages--;
      hv.frames.release(frames[i]!);
    }
    done++;
  }
  return { nr_done: done };
}

/** Gives back every RAM frame of a dying domain. */
export function relinquishMemory(hv: Hypervisor, d: Domain): void {
  for (const [, mfn] of d.p2m.entries()) hv.frames.release(mfn);
  d.p2m.clear();
  d.totPages = 0;
}
