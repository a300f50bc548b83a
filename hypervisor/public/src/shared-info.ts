/**
 * xen.h / arch-x86/xen.h: `vcpu_info`, `vcpu_time_info` and `shared_info` (fact sheet §8.1-8.3),
 * and the 2-level event-channel bit operations on them.
 *
 * Bitmaps are arrays of u64 in Xen. On a little-endian machine bit `p % 64` of u64 word `p / 64`
 * is bit `p % 32` of u32 word `p / 32`, so 32-bit Atomics give the same bytes and are what JS
 * offers on shared memory. Whoever sets a port pending (the hypervisor, or a peer process on the
 * bound-channel fast path) uses `setPending`; the guest uses `unmask` semantics through the
 * hypervisor and `scan` to consume.
 */
import { layout } from './layout.ts';
import { XEN_LEGACY_MAX_VCPUS } from './xen.ts';

export const vcpu_time_info = layout('vcpu_time_info', 32, {
  version: { offset: 0, size: 4, type: 'u32', writer: 'xen' },
  pad0: { offset: 4, size: 4, type: 'u32' },
  tsc_timestamp: { offset: 8, size: 8, type: 'u64', writer: 'xen' },
  system_time: { offset: 16, size: 8, type: 'u64', writer: 'xen', unit: 'ns since boot' },
  tsc_to_system_mul: { offset: 24, size: 4, type: 'u32', writer: 'xen' },
  tsc_shift: { offset: 28, size: 1, type: 'i8', writer: 'xen' },
  flags: { offset: 29, size: 1, type: 'u8', writer: 'xen' },
  pad1: { offset: 30, size: 2, type: 'u16' },
});

export const vcpu_info = layout('vcpu_info', 64, {
  /** Xen sets 1 when an upcall is due; the guest clears it before scanning. */
  evtchn_upcall_pending: { offset: 0, size: 1, type: 'u8', writer: 'both' },
  /** Non-zero: no upcall is delivered (like interrupts off). Guest-written. */
  evtchn_upcall_mask: { offset: 1, size: 1, type: 'u8', writer: 'guest' },
  /** Selector: bit i means word i of evtchn_pending may hold pending unmasked ports. */
  evtchn_pending_sel: { offset: 8, size: 8, type: 'u64', writer: 'both' },
  arch_cr2: { offset: 16, size: 8, type: 'u64', writer: 'xen' },
  arch_pad: { offset: 24, size: 8, type: 'u64' },
  time: { offset: 32, size: 32, type: 'bytes', writer: 'xen' },
});

export const shared_info = layout('shared_info', 3136, {
  vcpu_info: { offset: 0, size: 64 * XEN_LEGACY_MAX_VCPUS, type: 'bytes', writer: 'both' },
  evtchn_pending: { offset: 2048, size: 512, type: 'bytes', writer: 'both' },
  evtchn_mask: { offset: 2560, size: 512, type: 'bytes', writer: 'guest' },
  wc_version: { offset: 3072, size: 4, type: 'u32', writer: 'xen' },
  wc_sec: { offset: 3076, size: 4, type: 'u32', writer: 'xen' },
  wc_nsec: { offset: 3080, size: 4, type: 'u32', writer: 'xen' },
  wc_sec_hi: { offset: 3084, size: 4, type: 'u32', writer: 'xen' },
  arch_max_pfn: { offset: 3088, size: 8, type: 'u64', writer: 'guest' },
  arch_pfn_to_mfn_frame_list_list: { offset: 3096, size: 8, type: 'u64', writer: 'guest' },
  arch_nmi_reason: { offset: 3104, size: 8, type: 'u64', writer: 'xen' },
  arch_p2m_cr3: { offset: 3112, size: 8, type: 'u64', writer: 'guest' },
  arch_p2m_vaddr: { offset: 3120, size: 8, type: 'u64', writer: 'guest' },
  arch_p2m_generation: { offset: 3128, size: 8, type: 'u64', writer: 'guest' },
});

const PENDING_W = shared_info.fields.evtchn_pending.offset / 4;

/** What `markPending` did (see there). */
export const MarkResult = { already: 0, newly: 1, upcall: 2 } as const;
export type MarkResult = (typeof MarkResult)[keyof typeof MarkResult];
const MASK_W = shared_info.fields.evtchn_mask.offset / 4;

/**
 * A domain's shared_info page in (shared) machine memory, with the 2-level event operations.
 * All accesses are 32-bit Atomics so that several processes may operate at once.
 */
export class SharedInfoPage {
  readonly u8: Uint8Array;
  readonly u32: Uint32Array;

  constructor(buffer: ArrayBufferLike, byteOffset: number) {
    this.u8 = new Uint8Array(buffer, byteOffset, 4096);
    this.u32 = new Uint32Array(buffer, byteOffset, 1024);
  }

  isPending(port: number): boolean {
    return (Atomics.load(this.u32, PENDING_W + (port >>> 5)) & (1 << (port & 31))) !== 0;
  }
  isMasked(port: number): boolean {
    return (Atomics.load(this.u32, MASK_W + (port >>> 5)) & (1 << (port & 31))) !== 0;
  }
  setMask(port: number, masked: boolean): void {
    const bit = 1 << (port & 31);
    if (masked) Atomics.or(this.u32, MASK_W + (port >>> 5), bit);
    else Atomics.and(this.u32, MASK_W + (port >>> 5), ~bit);
  }
  clearPending(port: number): void {
    Atomics.and(this.u32, PENDING_W + (port >>> 5), ~(1 << (port & 31)));
  }
  upcallPending(vcpu: number): number {
    return Atomics.load(this.u8, vcpu * 64);
  }
  upcallMask(vcpu: number): number {
    return Atomics.load(this.u8, vcpu * 64 + 1);
  }
  setUpcallMask(vcpu: number, v: number): void {
    Atomics.store(this.u8, vcpu * 64 + 1, v);
  }
  pendingSel(vcpu: number): bigint {
    const w = (vcpu * 64 + 8) / 4;
    return (BigInt(Atomics.load(this.u32, w + 1)) << 32n) | BigInt(Atomics.load(this.u32, w));
  }

  /**
   * Test-and-set the selector bit for `port`'s word on `vcpu`; true if newly set. A bit seen
   * already set is left alone without a locked write: test-and-set would change nothing at that
   * instant either, and the guest clears the selector (exchange) before it reads the pending
   * words, so the pending bit set just before is still found. Consumers that never clear the
   * selector (`consume`) thus cost the sender no write to the vcpu_info line.
   */
  private setSel(vcpu: number, port: number): boolean {
    const word = port >>> 6; // u64 word of evtchn_pending
    const w = (vcpu * 64 + 8) / 4 + (word >>> 5);
    const bit = 1 << (word & 31);
    if (Atomics.load(this.u32, w) & bit) return false;
    return (Atomics.or(this.u32, w, bit) & bit) === 0;
  }

  /**
   * Xen's 2-level "set pending" (event_2l.c): test-and-set the pending bit; if newly pending
   * and unmasked, test-and-set the selector bit; if that was newly set, raise
   * evtchn_upcall_pending. Returns true when the vCPU should be kicked.
   */
  setPending(vcpu: number, port: number): boolean {
    return this.markPending(vcpu, port) === MarkResult.upcall;
  }

  /**
   * The same, saying what happened: `already` pending (or masked: nothing to deliver), `newly`
   * pending (a process consuming its own ports must be woken), or `upcall` (also newly due on
   * the vCPU: a guest kernel must be kicked).
   */
  markPending(vcpu: number, port: number): MarkResult {
    const bit = 1 << (port & 31);
    if (Atomics.or(this.u32, PENDING_W + (port >>> 5), bit) & bit) return MarkResult.already;
    if (this.isMasked(port)) return MarkResult.already;
    if (!this.setSel(vcpu, port)) return MarkResult.newly;
    Atomics.store(this.u8, vcpu * 64, 1);
    return MarkResult.upcall;
  }

  /**
   * Consumer side for one process among several acting for a domain (dom0's processes, each
   * owning some ports, like /dev/xen/evtchn): test-and-clear the pending bits of `ports` only,
   * leaving everyone else's. Masked ports are left pending.
   */
  consume(ports: Iterable<number>): number[] {
    const out: number[] = [];
    for (const port of ports) if (this.take(port)) out.push(port);
    return out;
  }

  /**
   * `consume` for one port, without allocating: test-and-clear its pending bit if it is
   * unmasked; true if it was pending. A clear bit is only read (no locked write), so a waiter
   * checking before it sleeps leaves the line shared with the sender that will set it.
   */
  take(port: number): boolean {
    const w = PENDING_W + (port >>> 5);
    const bit = 1 << (port & 31);
    if ((Atomics.load(this.u32, w) & bit) === 0) return false;
    if (this.isMasked(port)) return false;
    return (Atomics.and(this.u32, w, ~bit) & bit) !== 0;
  }

  /**
   * Pending and unmasked bits among `bits` of 32-bit pending word `word` (ports `32*word` to
   * `32*word + 31`), read without clearing: what a waiter watches while it spins.
   */
  ready(word: number, bits: number): number {
    const p = Atomics.load(this.u32, PENDING_W + word) & bits;
    return p === 0 ? 0 : p & ~Atomics.load(this.u32, MASK_W + word);
  }

  /** Xen's 2-level unmask: clear the mask; if pending, raise the selector and upcall. */
  unmask(vcpu: number, port: number): boolean {
    this.setMask(port, false);
    if (!this.isPending(port)) return false;
    if (!this.setSel(vcpu, port)) return false;
    Atomics.store(this.u8, vcpu * 64, 1);
    return true;
  }

  /**
   * Guest side: consume events for `vcpu` the way a guest's upcall handler does (clear
   * upcall_pending, swap the selector with 0, then take each pending unmasked port, clearing
   * its pending bit). Returns the ports in the order found.
   */
  scan(vcpu: number): number[] {
    Atomics.store(this.u8, vcpu * 64, 0);
    const w = (vcpu * 64 + 8) / 4;
    const lo = Atomics.exchange(this.u32, w, 0) >>> 0;
    const hi = Atomics.exchange(this.u32, w + 1, 0) >>> 0;
    const ports: number[] = [];
    for (let word = 0; word < 64; word++) {
      const sel = word < 32 ? lo : hi;
      if (!(sel & (1 << (word & 31)))) continue;
      for (let half = 0; half < 2; half++) {
        const idx = word * 2 + half;
        const ready = Atomics.load(this.u32, PENDING_W + idx) & ~Atomics.load(this.u32, MASK_W + idx);
        for (let b = 0; b < 32; b++) {
          if (!(ready & (1 << b))) continue;
          const port = idx * 32 + b;
          Atomics.and(this.u32, PENDING_W + idx, ~(1 << b));
          ports.push(port);
        }
      }
    }
    return ports;
  }
}
