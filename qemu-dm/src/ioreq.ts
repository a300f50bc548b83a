/**
 * Serving one slot of the synchronous ioreq page (Xen's `hvm/ioreq.h`, fact sheet §9.1; QEMU's
 * `handle_ioreq` in hw/xen/xen-hvm-common.c). This is the device-model half of the cycle:
 *
 *   hypervisor                         qemu-dm (this file)
 *   fill slot, state = READY  ──evtchn──►  see READY, state = INPROCESS
 *                                          copy the fields ONCE, validate the copy
 *                                          IoBus.handle(request)   (the device models)
 *                                          write `data` for a read without a pointer
 *   consume, state = NONE     ◄──evtchn──  state = IORESP_READY
 *
 * Only the `data` field and the state bits are written back; everything else is the
 * hypervisor's. A malformed request (bad size, absurd count, unknown type) gets an answer that
 * hardware would give — all ones for reads — and a counter, never an exception.
 */
import { IOREQ_DATA_IS_PTR, IOREQ_DF_BIT, IOREQ_DIR_BIT, IOREQ_STATE, IOREQ_STATE_MASK, IOREQ_TYPE, ioreq, readField, writeField } from '@xenlab/xen-public';
import type { IoBus, IoRequest } from './devices/io-bus.ts';
import type { AccessSize, DmaMemory } from './devices/types.ts';

/** A `rep` request longer than this many elements is refused (Xen bounds it by the page walk too). */
export const MAX_IOREQ_COUNT = 1 << 20;

export interface IoreqCounters {
  served: number;
  malformed: number;
  ignoredTypes: number;
}

/** The fields of one slot, copied once. */
export interface IoreqCopy {
  addr: number;
  data: number;
  count: number;
  size: number;
  vpEport: number;
  state: number;
  dataIsPtr: boolean;
  dirRead: boolean;
  df: boolean;
  type: number;
}

export function readIoreq(view: DataView, base: number): IoreqCopy {
  const f = ioreq.fields;
  const bits = readField(view, base, f.state_bits);
  return {
    addr: readField(view, base, f.addr),
    data: readField(view, base, f.data),
    count: readField(view, base, f.count),
    size: readField(view, base, f.size),
    vpEport: readField(view, base, f.vp_eport),
    state: bits & IOREQ_STATE_MASK,
    dataIsPtr: (bits & IOREQ_DATA_IS_PTR) !== 0,
    dirRead: (bits & IOREQ_DIR_BIT) !== 0,
    df: (bits & IOREQ_DF_BIT) !== 0,
    type: readField(view, base, f.type),
  };
}

/** Validate a copied slot into an `IoRequest`, or a reason it cannot be served. */
export function toIoRequest(c: IoreqCopy): IoRequest | { reject: 'type' | 'malformed' } {
  if (c.type !== IOREQ_TYPE.PIO && c.type !== IOREQ_TYPE.COPY) return { reject: 'type' };
  if (c.size !== 1 && c.size !== 2 && c.size !== 4) return { reject: 'malformed' };
  if (c.dataIsPtr && (c.count < 1 || c.count > MAX_IOREQ_COUNT)) return { reject: 'malformed' };
  if (c.type === IOREQ_TYPE.PIO && c.addr > 0xffff) return { reject: 'malformed' };
  return {
    space: c.type === IOREQ_TYPE.PIO ? 'pio' : 'mmio',
    dir: c.dirRead ? 'read' : 'write',
    addr: c.addr,
    size: c.size as AccessSize,
    count: c.dataIsPtr ? c.count : 1,
    dataIsPtr: c.dataIsPtr,
    df: c.df,
    data: c.data,
  };
}

function setState(view: DataView, base: number, state: number): void {
  const f = ioreq.fields.state_bits;
  const bits = readField(view, base, f);
  writeField(view, base, f, (bits & ~IOREQ_STATE_MASK) | state);
}

/**
 * Serve the slot at `base` if it is READY. Returns true when a response was produced.
 * The caller notifies the vCPU's event channel (`vp_eport`) afterwards.
 */
export function serveIoreqSlot(view: DataView, base: number, bus: IoBus, mem: DmaMemory, counters: IoreqCounters): boolean {
  const c = readIoreq(view, base);
  if (c.state !== IOREQ_STATE.READY) return false;
  setState(view, base, IOREQ_STATE.INPROCESS);
  const req = toIoRequest(c);
  let result: number | undefined;
  if ('reject' in req) {
    if (req.reject === 'type') counters.ignoredTypes++;
    else counters.malformed++;
    if (c.dirRead && !c.dataIsPtr) result = c.size === 1 ? 0xff : c.size === 2 ? 0xffff : 0xffffffff;
  } else {
    const r = bus.handle(req, mem);
    if (req.dir === 'read' && !req.dataIsPtr) result = r;
    counters.served++;
  }
  if (result !== undefined) writeField(view, base, ioreq.fields.data, result >>> 0);
  setState(view, base, IOREQ_STATE.IORESP_READY);
  return true;
}

/** The hypervisor's half, for tests and the in-process machine: fill a slot and mark it READY. */
export function writeIoreq(view: DataView, base: number, req: IoRequest, vpEport = 0): void {
  const f = ioreq.fields;
  for (let i = 0; i < ioreq.size; i++) view.setUint8(base + i, 0);
  writeField(view, base, f.addr, req.addr);
  writeField(view, base, f.data, req.data >>> 0);
  writeField(view, base, f.count, req.count);
  writeField(view, base, f.size, req.size);
  writeField(view, base, f.vp_eport, vpEport);
  writeField(view, base, f.type, req.space === 'pio' ? IOREQ_TYPE.PIO : IOREQ_TYPE.COPY);
  const bits = IOREQ_STATE.READY | (req.dataIsPtr ? IOREQ_DATA_IS_PTR : 0) | (req.dir === 'read' ? IOREQ_DIR_BIT : 0) | (req.df ? IOREQ_DF_BIT : 0);
  writeField(view, base, f.state_bits, bits);
}
