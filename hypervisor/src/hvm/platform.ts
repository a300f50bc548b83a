/**
 * The platform devices the hypervisor emulates itself for HVM guests, as Xen does (vpic, vpit):
 * the 8259 PIC pair and the 8254 PIT. Their ports never reach the device model. The PIT's
 * channel 0 drives a host timer that pulses IRQ 0; any line the PIC then delivers is queued on
 * vCPU 0 (injected into its CPU before its next slice) and wakes it from HLT. The device model
 * raises its own lines (the disk's IRQ 14, the UART's IRQ 4) with dm_op set_isa_irq_level.
 */
import type { Domain, Vcpu } from '../domain.ts';
import type { Hypervisor } from '../hypervisor.ts';
import type { IoExit } from '../sched/pcpu.ts';
import { Pic8259 } from './pic.ts';
import { Pit8254 } from './pit.ts';
import { newPlatformState, platformState, withPlatformLock, type PlatformState } from './platform-state.ts';

/** The fastest tick the host timer delivers (a guest may program the PIT faster). */
export const MIN_TICK_MS = 1;
/** Interrupts queued for a vCPU beyond this are dropped (a guest that never takes them). */
const MAX_QUEUED = 16;

/** The platform ports of an HVM guest: PIC master/slave, PIT counters and control. */
export const isPlatformPort = (port: number): boolean => port === 0x20 || port === 0x21 || port === 0xa0 || port === 0xa1 || (port >= 0x40 && port <= 0x43);

/**
 * A domain's PIC and PIT over its shared state (platform-state.ts): the same object type on the
 * main thread and on a pCPU worker; every method takes the domain's platform lock.
 */
export class SharedPlatform {
  readonly pic: Pic8259;
  readonly pit: Pit8254;
  /** Channel 0's period changed in the last `io` (the main thread must re-arm the tick). */
  periodChanged = false;

  constructor(
    readonly state: PlatformState,
    now: () => number,
  ) {
    this.pic = new Pic8259(state.pic);
    this.pit = new Pit8254(now, state.pit);
    this.pit.onPeriod = () => (this.periodChanged = true);
  }

  static attach(sab: SharedArrayBuffer, now: () => number): SharedPlatform {
    return new SharedPlatform(platformState(sab), now);
  }

  /** Emulates one IN/OUT; returns the value for an IN. */
  io(io: IoExit): number | undefined {
    return withPlatformLock(this.state.lock, () => {
      const dev = this.pic.handles(io.port) ? this.pic : this.pit;
      if (io.dir === 'out') {
        dev.write(io.port, io.value & 0xff);
        return undefined;
      }
      return dev.read(io.port);
    });
  }

  /** INTA until nothing is deliverable: the vectors to inject, at most `max`. */
  acknowledge(max: number): number[] {
    return withPlatformLock(this.state.lock, () => {
      const out: number[] = [];
      while (out.length < max) {
        const vector = this.pic.acknowledge();
        if (vector === undefined) break;
        out.push(vector);
      }
      return out;
    });
  }

  setIrq(irq: number, high: boolean): void {
    withPlatformLock(this.state.lock, () => this.pic.setIrq(irq, high));
  }

  pulse(irq: number): void {
    withPlatformLock(this.state.lock, () => this.pic.pulse(irq));
  }

  /** A hint without the lock: might the PIC deliver something now? (acknowledge() decides.) */
  mayDeliver(): boolean {
    const m = this.state.pic.master;
    return (m.irr & ~m.imr) !== 0;
  }

  get periodNs(): number {
    return withPlatformLock(this.state.lock, () => this.pit.periodNs);
  }
}

interface Platform {
  dev: SharedPlatform;
  /** The shared state, handed to pCPU workers with each slice (they emulate the ports). */
  sab: SharedArrayBuffer;
  id: number;
  timer: NodeJS.Timeout | undefined;
  periodNs: number;
}

/** What a pCPU worker needs to emulate a domain's platform devices (travels in a SliceRequest). */
export interface PlatformBinding {
  id: number;
  sab: SharedArrayBuffer;
  /** Absolute ms (performance.timeOrigin + performance.now()) at the hypervisor clock's zero. */
  clockEpochMs: number;
  /** Deliver PIC interrupts to this vCPU directly (vCPU 0 takes the PIC's output, as in Xen). */
  deliver: boolean;
}

export class Platforms {
  private readonly platforms = new Map<Domain, Platform>();
  private nextId = 1;
  readonly stats = { ticks: 0, injected: 0, dropped: 0, workerExits: 0 };
  /**
   * vCPUs in a slice on a pCPU worker: their PIC output is left latched for the worker, which
   * takes it between chunks (Xen's vCPU picking up a pending vPIC interrupt on its own pCPU);
   * what is left is delivered when the slice ends (`changed`).
   */
  readonly onWorker = new Set<Vcpu>();

  constructor(private readonly hv: Hypervisor) {}

  private get(d: Domain): Platform | undefined {
    if (!d.isHvm || d.dying !== 'alive') return undefined;
    let p = this.platforms.get(d);
    if (!p) {
      const { sab, state } = newPlatformState();
      p = { dev: new SharedPlatform(state, () => this.hv.now()), sab, id: this.nextId++, timer: undefined, periodNs: 0 };
      this.platforms.set(d, p);
    }
    return p;
  }

  /** Is this port one of the platform devices (for an HVM domain)? */
  handles(d: Domain, port: number): boolean {
    return d.isHvm && isPlatformPort(port);
  }

  /** The shared platform of `v`'s domain for a pCPU worker, or undefined if it has none (PV). */
  binding(v: Vcpu): PlatformBinding | undefined {
    const p = this.get(v.domain);
    if (!p) return undefined;
    return { id: p.id, sab: p.sab, clockEpochMs: performance.timeOrigin + performance.now() - this.hv.now() / 1e6, deliver: v.id === 0 };
  }

  /** Emulates one IN/OUT; returns the value for an IN. */
  io(v: Vcpu, io: IoExit): number | undefined {
    const p = this.get(v.domain);
    if (!p) return io.dir === 'in' ? 0xff : undefined;
    const value = p.dev.io(io);
    this.changed(v.domain);
    return value;
  }

  /**
   * A worker emulated platform ports of `d` (counted in `workerExits`): re-arm the tick if the
   * PIT's period changed, and deliver what the PIC now lets through.
   */
  changed(d: Domain, workerExits = 0): void {
    this.stats.workerExits += workerExits;
    const p = this.platforms.get(d);
    if (!p || d.dying !== 'alive') return;
    const ns = p.dev.periodNs;
    if (ns !== p.periodNs) this.retime(d, p, ns);
    this.deliver(d, p);
  }

  /** Interrupts a worker delivered straight into vCPU 0's CPU. */
  addInjected(n: number): void {
    this.stats.injected += n;
  }

  /** dm_op set_isa_irq_level: the device model drives an ISA line. */
  setIsaIrqLevel(d: Domain, irq: number, high: boolean): void {
    const p = this.get(d);
    if (!p) return;
    p.dev.setIrq(irq, high);
    this.deliver(d, p);
  }

  private retime(d: Domain, p: Platform, ns: number): void {
    if (p.timer) clearInterval(p.timer);
    p.timer = undefined;
    p.periodNs = ns;
    if (!ns) return;
    p.timer = setInterval(() => this.tick(d, p), Math.max(MIN_TICK_MS, ns / 1e6));
    p.timer.unref();
  }

  private tick(d: Domain, p: Platform): void {
    if (d.dying !== 'alive') return this.destroy(d);
    this.stats.ticks++;
    p.dev.pulse(0);
    this.deliver(d, p);
  }

  private deliver(d: Domain, p: Platform): void {
    const v = d.vcpus[0];
    if (!v || this.onWorker.has(v)) return;
    const room = MAX_QUEUED - v.pendingIrqs.length;
    if (room <= 0) {
      // Leave the request latched in the PIC; count it once as dropped if one is deliverable.
      if (p.dev.acknowledge(1).length) this.stats.dropped++;
      return;
    }
    const vectors = p.dev.acknowledge(room);
    if (!vectors.length) return;
    v.pendingIrqs.push(...vectors);
    this.stats.injected += vectors.length;
    if (v.blocked) {
      v.blocked = false; // an interrupt ends HLT
      this.hv.vcpuChanged(v);
    }
  }

  destroy(d: Domain): void {
    const p = this.platforms.get(d);
    if (p?.timer) clearInterval(p.timer);
    this.platforms.delete(d);
  }

  stopAll(): void {
    for (const d of [...this.platforms.keys()]) this.destroy(d);
  }
}
