/**
 * The ioreq fast path on a pCPU worker thread (docs/ioreq-cycle.md): the worker that ran the guest
 * into a port or MMIO exit serves it without a hop to the hypervisor's main thread and without a
 * socket message, as Xen's vCPU does in hvm_send_ioreq + the wait in hvm_wait_for_io
 * (xen/arch/x86/hvm/ioreq.c, fact sheet §9.1):
 *
 *   fill slot[vcpu], state = READY (store-release via Atomics)
 *   mark qemu-dm's port pending in dom0's shared_info, ring qemu-dm's doorbell (futex word)
 *   spin on the slot's state for `spinUs`, then sleep on the answer doorbell for `sleepUs`
 *     IORESP_READY  → take `data`, state = NONE, complete the instruction, keep running
 *     READY/INPROCESS after the wait → the vCPU is handed back blocked on the ioreq ("sent");
 *                     the main thread completes it when the answer's doorbell rings
 *     anything else → the device model wrote garbage: the guest crashes (never the host)
 *
 * Everything the worker needs comes with the slice request as an `IoreqBinding` (addresses in
 * machine memory, the claimed ranges); the worker trusts nothing it reads back from the slot
 * except the state bits and `data`, each read once.
 */
import { IOREQ_DATA_IS_PTR, IOREQ_DF_BIT, IOREQ_DIR_BIT, IOREQ_STATE, IOREQ_STATE_MASK, IOREQ_TYPE, MarkResult, SharedInfoPage, ioreq } from '@xenlab/xen-public';
import { Doorbell } from '@xenlab/ring-buffers';
import type { IoExit } from '../sched/pcpu.ts';
import { waitForAnswer } from '../sched/answer-wait.ts';

const F = ioreq.fields;

/** What a worker needs to send one vCPU's ioreqs itself. Plain data: it travels in a SliceRequest. */
export interface IoreqBinding {
  /** Byte address of the ioreq page in machine memory. */
  pageAddr: number;
  /** The vCPU's slot (its id). */
  slot: number;
  vpEport: number;
  /** Claimed ranges (inclusive); an empty list of a kind = the server takes all of that kind. */
  ranges: { port: [number, number][]; mmio: [number, number][] };
  /** The device model's end of vp_eport, once it bound it: where to set the pending bit and ring. */
  dm?: { sharedInfoAddr: number; port: number; vcpu: number; bellAddr: number };
  /** The doorbell device models ring after writing IORESP_READY (hvm/ioreq.ts `answerBellAddr`). */
  answerBellAddr: number;
  /** Bounded wait for the answer on the worker: spin, then futex sleep, then hand the vCPU back. */
  spinUs: number;
  /** Within the sleep: first keep looking this long, yielding the core before each look. */
  yieldUs?: number;
  sleepUs: number;
}

export type IoCompletion = { value?: number; mmio?: boolean };

/** How a worker disposed of an exit. */
export type FastIoResult =
  | { kind: 'done'; completion: IoCompletion; unclaimed?: boolean }
  | { kind: 'sent' }
  | { kind: 'crash'; reason: string };

/** What the vCPU's CPU needs to finish the access: the value of a read, nothing for a write. */
export function ioCompletion(io: IoExit, value: number): IoCompletion {
  if (io.mmio) return io.dir === 'in' ? { value, mmio: true } : { mmio: true };
  return io.dir === 'in' && !io.string ? { value } : {};
}

export const allOnes = (io: IoExit): number => (io.size === 1 ? 0xff : 0xffff);

/** Does the server want this access? (Everything of a kind until it claims a range of that kind.) */
export function claims(ranges: IoreqBinding['ranges'], io: IoExit): boolean {
  const list = io.mmio ? ranges.mmio : ranges.port;
  if (list.length === 0) return true;
  return list.some(([lo, hi]) => io.port >= lo && io.port <= hi); // for MMIO `port` is the address
}

/** Fills slot `slot` of the ioreq page at `pageAddr` and sets READY last (the protocol's barrier). */
export function writeIoreqSlot(buffer: ArrayBufferLike, pageAddr: number, slot: number, io: IoExit, vpEport: number): void {
  const dv = new DataView(buffer, pageAddr, 4096);
  const u8 = new Uint8Array(buffer, pageAddr, 4096);
  const base = slot * ioreq.size;
  dv.setBigUint64(base + F.addr.offset, BigInt(io.port), true);
  dv.setBigUint64(base + F.data.offset, BigInt(io.string ? io.addr : io.dir === 'out' ? io.value : 0), true);
  dv.setUint32(base + F.count.offset, io.string ? io.count : 1, true);
  dv.setUint32(base + F.size.offset, io.size, true);
  dv.setUint32(base + F.vp_eport.offset, vpEport, true);
  dv.setUint8(base + F.type.offset, io.mmio ? IOREQ_TYPE.COPY : IOREQ_TYPE.PIO);
  const bits = (io.dir === 'in' ? IOREQ_DIR_BIT : 0) | (io.string ? IOREQ_DATA_IS_PTR : 0) | (io.step < 0 ? IOREQ_DF_BIT : 0);
  // Sequentially consistent: every field above is visible before READY.
  Atomics.store(u8, base + F.state_bits.offset, bits | IOREQ_STATE.READY);
}

/**
 * Reads the slot's answer once: `{ data }` if IORESP_READY (the slot is then reset to NONE),
 * 'waiting' while READY/INPROCESS, or a reason the state is invalid.
 */
export function takeIoreqAnswer(buffer: ArrayBufferLike, pageAddr: number, slot: number): { data: number } | 'waiting' | { bad: string } {
  const u8 = new Uint8Array(buffer, pageAddr, 4096);
  const off = slot * ioreq.size + F.state_bits.offset;
  const bits = Atomics.load(u8, off);
  const st = bits & IOREQ_STATE_MASK;
  if (st === IOREQ_STATE.READY || st === IOREQ_STATE.INPROCESS) return 'waiting';
  if (st !== IOREQ_STATE.IORESP_READY) return { bad: `ioreq slot ${slot} in state ${st} while a request was outstanding` };
  const data = Number(new DataView(buffer, pageAddr, 4096).getBigUint64(slot * ioreq.size + F.data.offset, true) & 0xffffn);
  Atomics.store(u8, off, bits & ~IOREQ_STATE_MASK);
  return { data };
}

/** Counters a worker reports with each slice (added to `IoreqServers.stats`). */
export interface FastIoCounters {
  /** ioreqs written by the worker. */
  sent: number;
  /** ... answered while the worker waited (no main-thread hop). */
  completed: number;
  /** ... not answered in the bounded wait: the vCPU went back blocked on the ioreq. */
  parked: number;
  /** Accesses no server claimed, answered all-ones on the worker. */
  unclaimed: number;
}
export const zeroFastIoCounters = (): FastIoCounters => ({ sent: 0, completed: 0, parked: 0, unclaimed: 0 });

/** The worker half: one per pCPU thread, over the machine-memory mapping. */
export class IoreqFastPath {
  private readonly bells = new Map<number, Doorbell>();
  private readonly infos = new Map<number, SharedInfoPage>();
  counters = zeroFastIoCounters();

  constructor(private readonly buffer: ArrayBuffer) {}

  private bell(addr: number): Doorbell {
    let b = this.bells.get(addr);
    if (!b) this.bells.set(addr, (b = new Doorbell(this.buffer, addr)));
    return b;
  }

  private info(addr: number): SharedInfoPage {
    let p = this.infos.get(addr);
    if (!p) this.infos.set(addr, (p = new SharedInfoPage(this.buffer, addr)));
    return p;
  }

  /**
   * Serves `io` for the vCPU bound by `b`: all-ones if unclaimed, else the full cycle with a
   * bounded wait. `preempt()` cuts the wait short (the scheduler wants this pCPU back).
   */
  serve(b: IoreqBinding, io: IoExit, preempt: () => boolean): FastIoResult | undefined {
    if (!claims(b.ranges, io)) {
      this.counters.unclaimed++;
      return { kind: 'done', completion: ioCompletion(io, allOnes(io)), unclaimed: true };
    }
    const dm = b.dm;
    if (!dm) return undefined; // no device model bound yet: the main thread's path
    const answer = this.bell(b.answerBellAddr);
    const seen = answer.seq;
    writeIoreqSlot(this.buffer, b.pageAddr, b.slot, io, b.vpEport);
    this.counters.sent++;
    // Xen's "set pending" on dom0's shared_info for qemu-dm's port, then its doorbell: the same
    // as EvtchnNotifier.trySend, from the hypervisor's side of a Xen-consumed channel.
    if (this.info(dm.sharedInfoAddr).markPending(dm.vcpu, dm.port) !== MarkResult.already) this.bell(dm.bellAddr).ring();
    // Spin, then sleep on the answer doorbell (any device model's answer wakes us: re-check every
    // 0.2 ms), all within the binding's spin + sleep; not answered by then: parked.
    const got: { r: ReturnType<typeof takeIoreqAnswer> } = { r: 'waiting' };
    const answered = (): boolean => (got.r = takeIoreqAnswer(this.buffer, b.pageAddr, b.slot)) !== 'waiting';
    if (!waitForAnswer(answered, answer, seen, { spinUs: b.spinUs, yieldUs: b.yieldUs, waitUs: b.spinUs + b.sleepUs, napMs: 0.2 }, preempt) || got.r === 'waiting') {
      this.counters.parked++;
      return { kind: 'sent' };
    }
    const a = got.r;
    if ('bad' in a) return { kind: 'crash', reason: `device model: ${a.bad}` };
    this.counters.completed++;
    return { kind: 'done', completion: ioCompletion(io, io.size === 1 ? a.data & 0xff : a.data) };
  }
}
