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

/** The fastest tick the host timer delivers (a guest may program the PIT faster). */
export const MIN_TICK_MS = 1;
/** Interrupts queued for a vCPU beyond this are dropped (a guest that never takes them). */
const MAX_QUEUED = 16;

interface Platform {
  pic: Pic8259;
  pit: Pit8254;
  timer: NodeJS.Timeout | undefined;
}

export class Platforms {
  private readonly platforms = new Map<Domain, Platform>();
  readonly stats = { ticks: 0, injected: 0, dropped: 0 };

  constructor(private readonly hv: Hypervisor) {}

  private get(d: Domain): Platform | undefined {
    if (!d.isHvm || d.dying !== 'alive') return undefined;
    let p = this.platforms.get(d);
    if (!p) {
      const pit = new Pit8254(() => this.hv.now());
      p = { pic: new Pic8259(), pit, timer: undefined };
      const plat = p;
      pit.onPeriod = (ns) => this.retime(d, plat, ns);
      this.platforms.set(d, p);
    }
    return p;
  }

  /** Is this port one of the platform devices (for an HVM domain)? */
  handles(d: Domain, port: number): boolean {
    return d.isHvm && (port === 0x20 || port === 0x21 || port === 0xa0 || port === 0xa1 || (port >= 0x40 && port <= 0x43));
  }

  /** Emulates one IN/OUT; returns the value for an IN. */
  io(v: Vcpu, io: IoExit): number | undefined {
    const p = this.get(v.domain);
    if (!p) return io.dir === 'in' ? 0xff : undefined;
    const dev = p.pic.handles(io.port) ? p.pic : p.pit;
    if (io.dir === 'out') {
      dev.write(io.port, io.value & 0xff);
      if (dev === p.pic) this.deliver(v.domain, p); // an EOI or unmask may release a request
      return undefined;
    }
    return dev.read(io.port);
  }

  /** dm_op set_isa_irq_level: the device model drives an ISA line. */
  setIsaIrqLevel(d: Domain, irq: number, high: boolean): void {
    const p = this.get(d);
    if (!p) return;
    p.pic.setIrq(irq, high);
    this.deliver(d, p);
  }

  private retime(d: Domain, p: Platform, ns: number): void {
    if (p.timer) clearInterval(p.timer);
    p.timer = undefined;
    if (!ns) return;
    p.timer = setInterval(() => this.tick(d, p), Math.max(MIN_TICK_MS, ns / 1e6));
    p.timer.unref();
  }

  private tick(d: Domain, p: Platform): void {
    if (d.dying !== 'alive') return this.destroy(d);
    this.stats.ticks++;
    p.pic.pulse(0);
    this.deliver(d, p);
  }

  private deliver(d: Domain, p: Platform): void {
    const v = d.vcpus[0];
    if (!v) return;
    for (;;) {
      const vector = p.pic.acknowledge();
      if (vector === undefined) return;
      if (v.pendingIrqs.length >= MAX_QUEUED) {
        this.stats.dropped++;
        return;
      }
      v.pendingIrqs.push(vector);
      this.stats.injected++;
      if (v.blocked) {
        v.blocked = false; // an interrupt ends HLT
        this.hv.vcpuChanged(v);
      }
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
