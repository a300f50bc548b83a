/**
 * An HVM domain's platform devices (8259 PIC pair, 8254 PIT) in memory shared by the hypervisor's
 * threads, so that the pCPU worker running a vCPU emulates their ports itself, without a hop to
 * the main thread (Xen emulates vpic/vpit on the pCPU that takes the exit, under the domain's
 * vpic/vpit locks — xen/arch/x86/hvm/vpic.c, emul/i8254.c; docs/ioreq-cycle.md).
 *
 * Ownership: the state is one SharedArrayBuffer per domain (made by the main thread's
 * `Platforms`, handed to workers with each slice request). Whoever touches it — a worker on a
 * port exit, the main thread on a timer tick, a device model's `set_isa_irq_level`, or a PIC
 * acknowledge — holds the domain's platform lock for the few field updates it makes. The lock
 * is an Int32 word: a bounded spin, then `Atomics.wait` with a 1 ms timeout, so a waiter never
 * spins without bound on the two-core machine.
 *
 * Layout (Float64 slots after a 16-byte lock header): master chip, slave chip (9 fields each,
 * PicChipState order), then three PIT channels (9 fields each, PitChannelState order; `latched`
 * null is NaN; booleans are 0/1).
 */
import { picChipInitial, type PicChipState } from './pic.ts';
import { pitChannelInitial, type PitChannelState } from './pit.ts';

type Kind = 'n' | 'b' | 'null';
const PIC_FIELDS: Record<keyof PicChipState, Kind> = { irr: 'n', isr: 'n', imr: 'n', vectorBase: 'n', initStep: 'n', needIcw4: 'b', autoEoi: 'b', readIsr: 'b', levels: 'n' };
const PIT_FIELDS: Record<keyof PitChannelState, Kind> = { reload: 'n', mode: 'n', access: 'n', writeHi: 'b', pendingLo: 'n', readHi: 'b', latched: 'null', loadedAt: 'n', running: 'b' };
const HEADER = 16;
const SLOTS = 2 * 9 + 3 * 9;
export const PLATFORM_STATE_BYTES = HEADER + SLOTS * 8;

/** An object whose fields live in `f64[base..]` (getters/setters: reads always see shared memory). */
function backed<T extends object>(f64: Float64Array, base: number, fields: Record<keyof T, Kind>): T {
  const o = {};
  let i = base;
  for (const [k, kind] of Object.entries(fields) as [string, Kind][]) {
    const at = i++;
    Object.defineProperty(o, k, {
      enumerable: true,
      get: kind === 'b' ? () => f64[at] !== 0 : kind === 'null' ? () => (Number.isNaN(f64[at]) ? null : f64[at]) : () => f64[at],
      set: kind === 'b' ? (v: boolean) => (f64[at] = v ? 1 : 0) : kind === 'null' ? (v: number | null) => (f64[at] = v === null ? NaN : v) : (v: number) => (f64[at] = v),
    });
  }
  return o as T;
}

export interface PlatformState {
  lock: Int32Array;
  pic: { master: PicChipState; slave: PicChipState };
  pit: PitChannelState[];
}

/** Views of a domain's shared platform state. */
export function platformState(sab: SharedArrayBuffer): PlatformState {
  const f64 = new Float64Array(sab, HEADER, SLOTS);
  return {
    lock: new Int32Array(sab, 0, 1),
    pic: { master: backed<PicChipState>(f64, 0, PIC_FIELDS), slave: backed<PicChipState>(f64, 9, PIC_FIELDS) },
    pit: [0, 1, 2].map((c) => backed<PitChannelState>(f64, 18 + 9 * c, PIT_FIELDS)),
  };
}

/** A new domain's platform state at power-on. */
export function newPlatformState(): { sab: SharedArrayBuffer; state: PlatformState } {
  const sab = new SharedArrayBuffer(PLATFORM_STATE_BYTES);
  const state = platformState(sab);
  Object.assign(state.pic.master, picChipInitial(0x08));
  Object.assign(state.pic.slave, picChipInitial(0x70));
  for (const c of state.pit) Object.assign(c, pitChannelInitial());
  return { sab, state };
}

const SPIN = 200;

/** Runs `fn` holding the platform lock (bounded spin, then 1 ms futex waits until it is free). */
export function withPlatformLock<T>(lock: Int32Array, fn: () => T): T {
  for (let i = 0; Atomics.compareExchange(lock, 0, 0, 1) !== 0; i++) {
    if (i >= SPIN) Atomics.wait(lock, 0, 1, 1);
  }
  try {
    return fn();
  } finally {
    Atomics.store(lock, 0, 0);
    Atomics.notify(lock, 0, 1);
  }
}
