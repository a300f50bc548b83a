/**
 * The PV trap slot: xenlab's shared-memory way for a bounced trap to reach the domain's kernel
 * process and come back, without the hypervisor's main thread and a socket on the way (the same
 * idea as the ioreq page for HVM exits; not Xen ABI — Xen bounces a trap into the guest kernel
 * on the same CPU, which a separate kernel process cannot do). The kernel registers one page of
 * its own memory (`set_trap_table` / `xenlab_trap_slot`); each vCPU has a slot in it, and the
 * page's doorbell wakes the kernel:
 *
 *   pCPU worker (the vCPU ran INT n, n in the trap table):
 *     write vector, kind and the registers; state = PENDING; ring the doorbell
 *     wait on state for a bounded time (spin, then sleep on the answer doorbell):
 *       DONE    -> take the registers back, state = IDLE, the slice goes on after the INT
 *       timeout -> CAS PENDING -> PARKED: the vCPU leaves the pCPU blocked in its trap, and the
 *                  kernel resumes it with the `iret` hypercall when it is done
 *   kernel process (waits on the doorbell, or looks at state while it expects traps):
 *     PENDING -> serve the call, write the registers, CAS PENDING -> DONE, ring the answer
 *                doorbell; if the CAS finds PARKED, `iret { vcpu, frame }` as for a socket-bounced trap
 *
 * Word layout of a slot (u32, little-endian): 0 state, 1 vector, 2 kind (0 int, 1 exception),
 * 3.. the registers in TRAP_FRAME_REGS order (16-bit values). Slots are TRAP_SLOT_BYTES apart; the
 * kernel's doorbell (64 bytes) is at TRAP_SLOT_BELL_OFFSET, the workers' answer doorbell after it.
 */
import { TRAP_FRAME_REGS, type TrapFrame } from './hypercall.ts';

export const TRAP_SLOT_STATE = { IDLE: 0, PENDING: 1, DONE: 2, PARKED: 3 } as const;
/**
 * How long each process of a trap's round trip (the hypervisor's main thread, the pCPU worker,
 * the PV kernel) keeps looking rather than sleeping after one, µs: the next trap or `iret`
 * usually follows soon. One knob for all three (0: sleep at once).
 */
export const TRAP_AWAKE = { env: 'XENLAB_TRAP_AWAKE_US', defaultUs: 300 } as const;
export const TRAP_SLOT_BYTES = 128;
/** vCPUs one page serves (slots before the doorbell). */
export const TRAP_SLOT_MAX_VCPUS = 16;
export const TRAP_SLOT_BELL_OFFSET = TRAP_SLOT_BYTES * TRAP_SLOT_MAX_VCPUS;
/** The doorbell the kernel rings after DONE, for a worker that went to sleep waiting (64 bytes). */
export const TRAP_SLOT_ANSWER_BELL_OFFSET = TRAP_SLOT_BELL_OFFSET + 64;
const W_STATE = 0;
const W_VECTOR = 1;
const W_KIND = 2;
const W_REGS = 3;

/** One vCPU's slot, over a Uint32Array view of the page (word index `base`). */
export class TrapSlot {
  readonly base: number;
  constructor(
    readonly words: Uint32Array,
    vcpu: number,
  ) {
    this.base = (vcpu * TRAP_SLOT_BYTES) / 4;
  }

  get state(): number {
    return Atomics.load(this.words, this.base + W_STATE);
  }

  /** The worker's side: the trap's vector, kind and registers, then PENDING (the barrier). */
  post(vector: number, kind: 'int' | 'exception', regs: Readonly<Record<(typeof TRAP_FRAME_REGS)[number], number>>): void {
    const w = this.words;
    const b = this.base;
    w[b + W_VECTOR] = vector;
    w[b + W_KIND] = kind === 'int' ? 0 : 1;
    for (let i = 0; i < TRAP_FRAME_REGS.length; i++) w[b + W_REGS + i] = regs[TRAP_FRAME_REGS[i]!] & 0xffff;
    Atomics.store(w, b + W_STATE, TRAP_SLOT_STATE.PENDING);
  }

  get vector(): number {
    return this.words[this.base + W_VECTOR]! & 0xff;
  }

  get kind(): 'int' | 'exception' {
    return this.words[this.base + W_KIND] === 1 ? 'exception' : 'int';
  }

  /** The registers in the slot, each read once and cut to 16 bits. */
  frame(): TrapFrame {
    const f = {} as TrapFrame;
    for (let i = 0; i < TRAP_FRAME_REGS.length; i++) f[TRAP_FRAME_REGS[i]!] = this.words[this.base + W_REGS + i]! & 0xffff;
    return f;
  }

  /** The kernel's side: the registers to resume with, then PENDING -> DONE. False: the worker parked (use `iret`). */
  complete(frame: TrapFrame): boolean {
    const w = this.words;
    for (let i = 0; i < TRAP_FRAME_REGS.length; i++) w[this.base + W_REGS + i] = frame[TRAP_FRAME_REGS[i]!] & 0xffff;
    return Atomics.compareExchange(w, this.base + W_STATE, TRAP_SLOT_STATE.PENDING, TRAP_SLOT_STATE.DONE) === TRAP_SLOT_STATE.PENDING;
  }

  /** The worker gives up waiting: PENDING -> PARKED; returns the state it found (DONE: take it after all). */
  park(): number {
    return Atomics.compareExchange(this.words, this.base + W_STATE, TRAP_SLOT_STATE.PENDING, TRAP_SLOT_STATE.PARKED);
  }

  /** Back to IDLE (the worker after DONE, the kernel after it answered a PARKED trap). */
  reset(): void {
    Atomics.store(this.words, this.base + W_STATE, TRAP_SLOT_STATE.IDLE);
  }
}
