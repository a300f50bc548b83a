/**
 * A deterministic pCPU simulator for the scheduler: virtual time, N pCPUs, and fake guest
 * workloads (run for a burst, block for a while, repeat) standing in for the x86 CPU. It drives
 * the same Hypervisor + CreditScheduler the real host uses, through the same calls a pCPU thread
 * makes (schedule at slice end, tick every 10 ms, account every slice), so scheduling policy can
 * be tested over seconds of guest time in milliseconds of real time.
 */
import type { CreateDomainArg } from '@xenlab/xen-public';
import type { Domain, Vcpu } from '../domain.ts';
import { Hypervisor } from '../hypervisor.ts';
import { MachineMemory } from '../mm/machine-memory.ts';
import { CreditScheduler, type CreditOptions } from './credit.ts';

/** A fake guest: computes for `burstNs`, then blocks for `sleepNs` (Infinity burst = CPU hog). */
export class FakeGuest {
  remaining: number;
  constructor(
    readonly burstNs = Infinity,
    readonly sleepNs = 0,
  ) {
    this.remaining = burstNs;
  }
}

export interface SimDomain {
  weight?: number;
  cap?: number;
  vcpus?: number;
  affinity?: number[][];
  guest?: () => FakeGuest;
  create?: Partial<CreateDomainArg>;
}

export class Simulation {
  now = 0;
  readonly hv: Hypervisor;
  readonly sched: CreditScheduler;
  private readonly guests = new Map<Vcpu, FakeGuest>();
  private readonly wakeups: { at: number; v: Vcpu }[] = [];
  private readonly resched = new Set<number>();
  private readonly sliceEnd: number[];
  private nextTick: number;
  private nextAcct: number;
  /** Per-pCPU record of which domain ran (for affinity checks): pcpu -> set of domids. */
  readonly ranOn: Set<number>[];

  constructor(opts: Omit<CreditOptions, 'clock'> & { frames?: number }) {
    this.sched = new CreditScheduler(opts);
    this.hv = new Hypervisor({
      memory: new MachineMemory(new ArrayBuffer((opts.frames ?? 256) * 4096)),
      nrPcpus: opts.nrPcpus,
      clock: () => this.now,
      sched: this.sched,
    });
    this.sched.tickle = (cpu) => this.resched.add(cpu);
    this.sliceEnd = new Array<number>(opts.nrPcpus).fill(Infinity);
    this.ranOn = Array.from({ length: opts.nrPcpus }, () => new Set<number>());
    this.nextTick = this.sched.tickNs;
    this.nextAcct = this.sched.tsliceNs;
  }

  /** Creates a running domain whose vCPUs all run `guest()` workloads. */
  addDomain(spec: SimDomain = {}): Domain {
    const n = spec.vcpus ?? 1;
    const d = this.hv.createDomain({ max_vcpus: n, ...spec.create });
    d.weight = spec.weight ?? 256;
    d.cap = spec.cap ?? 0;
    d.vcpus.forEach((v, i) => {
      this.guests.set(v, spec.guest?.() ?? new FakeGuest());
      if (spec.affinity?.[i]) v.hardAffinity = spec.affinity[i]!;
      v.online = true;
    });
    this.sched.adjust(d);
    this.hv.unpauseDomain(d);
    return d;
  }

  /** Runs `durationNs` of virtual time. */
  run(durationNs: number): void {
    const end = this.now + durationNs;
    for (;;) {
      this.doResched();
      let t = Math.min(end, this.nextTick, this.nextAcct);
      for (let c = 0; c < this.sliceEnd.length; c++) {
        t = Math.min(t, this.sliceEnd[c]!);
        const cur = this.sched.pcpus[c]!.curr;
        if (cur) t = Math.min(t, this.now + this.guests.get(cur.v)!.remaining);
      }
      for (const w of this.wakeups) t = Math.min(t, w.at);
      const dt = t - this.now;
      for (const p of this.sched.pcpus) if (p.curr) this.guests.get(p.curr.v)!.remaining -= dt;
      this.now = t;
      if (this.now >= end) break;

      for (let i = this.wakeups.length - 1; i >= 0; i--) {
        const w = this.wakeups[i]!;
        if (w.at > this.now) continue;
        this.wakeups.splice(i, 1);
        w.v.blocked = false;
        this.hv.vcpuChanged(w.v);
      }
      for (const p of this.sched.pcpus) {
        const cur = p.curr;
        if (!cur) continue;
        this.ranOn[p.id]!.add(cur.v.domain.domid);
        const g = this.guests.get(cur.v)!;
        if (g.remaining <= 0) {
          g.remaining = g.burstNs;
          this.wakeups.push({ at: this.now + g.sleepNs, v: cur.v });
          this.hv.blockVcpu(cur.v);
        }
      }
      for (let c = 0; c < this.sliceEnd.length; c++) if (this.sliceEnd[c]! <= this.now) this.resched.add(c);
      if (this.nextTick <= this.now) {
        for (let c = 0; c < this.sliceEnd.length; c++) this.sched.tick(c, this.now);
        this.nextTick += this.sched.tickNs;
      }
      if (this.nextAcct <= this.now) {
        this.sched.account(this.now);
        this.nextAcct += this.sched.tsliceNs;
      }
    }
  }

  private doResched(): void {
    let guard = 0;
    while (this.resched.size > 0) {
      if (++guard > 1000) throw new Error('simulate: reschedule loop');
      const cpus = [...this.resched].sort((a, b) => a - b);
      this.resched.clear();
      for (const c of cpus) {
        const r = this.sched.schedule(c, this.now);
        this.sliceEnd[c] = r.next ? this.now + r.sliceNs : Infinity;
      }
    }
  }

  /** CPU time (ns) of a domain so far. */
  cpuTime(d: Domain): number {
    return d.cpuTime(this.now);
  }
}
