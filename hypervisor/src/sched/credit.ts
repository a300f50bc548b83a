/**
 * The credit scheduler, after xen/common/sched/credit.c (fact sheet §14): per-domain weight and
 * cap, credits debited at 10 per ms of CPU, re-credited every time slice (30 ms) by weight among
 * the domains that are active, priorities BOOST > UNDER > OVER > IDLE with FIFO order inside a
 * priority, a 10 ms tick that ends a boost and activates a running vCPU, a 1 ms rate limit,
 * load balancing (an idle or OVER-only pCPU steals better work from its peers), hard affinity,
 * and parking of vCPUs whose domain is over its cap.
 *
 * It is written against a clock passed in and never looks at real time, so the same code runs on
 * the real pCPU threads and in the deterministic simulator used by the fairness tests. The driver
 * (a pCPU loop or the simulator) calls `schedule`, `tick` and `account`, and is asked through
 * `tickle` to reschedule a pCPU soon.
 */
import type { Domain, Vcpu } from '../domain.ts';
import type { Hypervisor, SchedHooks } from '../hypervisor.ts';

export const CSCHED_PRI = { TS_BOOST: 0, TS_UNDER: -1, TS_OVER: -2, IDLE: -64 } as const;
export const CSCHED_CREDITS_PER_MSEC = 10;
export const CSCHED_TICKS_PER_TSLICE = 3;
export const CSCHED_DEFAULT_WEIGHT = 256;
export const CSCHED_DEFAULT_TSLICE_MS = 30;
export const SCHED_DEFAULT_RATELIMIT_US = 1000;
const NS_PER_MS = 1_000_000;

export class CschedUnit {
  pri: number = CSCHED_PRI.TS_UNDER;
  credit = 0;
  /** Burn remainder in credit-ns (credit.c's residual). */
  residual = 0;
  lastBurn = 0;
  /** When it last started running (for the rate limit). */
  startTime = 0;
  /** On its domain's active list (earning credit). */
  active = false;
  yieldFlag = false;
  /** Index of the pCPU whose runq holds it, or -1. */
  onRunq = -1;
  pcpu = 0;
  constructor(readonly v: Vcpu) {}
}

export class CschedPcpu {
  readonly runq: CschedUnit[] = [];
  curr: CschedUnit | null = null;
  sortGen = 0;
  idleNs = 0;
  idleSince = 0;
  constructor(readonly id: number) {}
}

export interface CreditOptions {
  nrPcpus: number;
  tsliceMs?: number;
  ratelimitUs?: number;
  /** Monotonic ns; the Hypervisor's clock when attached. */
  clock?: () => number;
}

export interface ScheduleDecision {
  next: Vcpu | null;
  /** How long to run it before calling schedule again; -1 when idle (until tickled). */
  sliceNs: number;
}

export class CreditScheduler implements SchedHooks {
  readonly pcpus: CschedPcpu[];
  tsliceMs: number;
  ratelimitUs: number;
  /** Asks the driver to call schedule(cpu) soon (Xen's SCHEDULE_SOFTIRQ). */
  tickle: (cpu: number) => void = () => {};
  private hv: Hypervisor | undefined;
  private clock: () => number;
  private sortGen = 0;
  private readonly units = new Set<CschedUnit>();
  /** Counters that explain behaviour (context switches, steals, parks). */
  readonly stats = { schedules: 0, switches: 0, steals: 0, parks: 0, unparks: 0, boosts: 0 };

  constructor(opts: CreditOptions) {
    this.pcpus = Array.from({ length: opts.nrPcpus }, (_, i) => new CschedPcpu(i));
    this.tsliceMs = opts.tsliceMs ?? CSCHED_DEFAULT_TSLICE_MS;
    this.ratelimitUs = opts.ratelimitUs ?? SCHED_DEFAULT_RATELIMIT_US;
    this.clock = opts.clock ?? (() => 0);
  }

  get tsliceNs(): number {
    return this.tsliceMs * NS_PER_MS;
  }
  get tickNs(): number {
    return this.tsliceMs < CSCHED_TICKS_PER_TSLICE ? this.tsliceNs : this.tsliceNs / CSCHED_TICKS_PER_TSLICE;
  }
  get creditsPerTslice(): number {
    return CSCHED_CREDITS_PER_MSEC * this.tsliceMs;
  }

  attach(hv: Hypervisor): void {
    this.hv = hv;
    this.clock = () => hv.now();
  }

  unit(v: Vcpu): CschedUnit {
    return v.sched as CschedUnit;
  }

  private allowed(u: CschedUnit, cpu: number): boolean {
    const a = u.v.hardAffinity;
    return a === null || a.includes(cpu);
  }

  private isIdle(cpu: number): boolean {
    const p = this.pcpus[cpu]!;
    return p.curr === null && p.runq.length === 0;
  }

  // --- SchedHooks ---------------------------------------------------------------------------

  insert(v: Vcpu): void {
    const u = new CschedUnit(v);
    v.sched = u;
    u.pcpu = this.pickCpu(u);
    v.pcpu = u.pcpu;
    this.units.add(u);
  }

  remove(v: Vcpu): void {
    const u = this.unit(v);
    if (!u) return;
    this.sleep(v);
    u.active = false;
    this.units.delete(u);
  }

  wake(v: Vcpu): void {
    const u = this.unit(v);
    if (!u || !this.units.has(u)) return;
    if (this.pcpus[u.pcpu]!.curr === u || u.onRunq >= 0) return;
    if (u.pri === CSCHED_PRI.TS_UNDER && !v.parked) {
      u.pri = CSCHED_PRI.TS_BOOST;
      this.stats.boosts++;
    }
    const cpu = this.pickCpu(u);
    u.pcpu = cpu;
    this.runqInsert(this.pcpus[cpu]!, u);
    this.runqTickle(cpu, u);
  }

  sleep(v: Vcpu): void {
    const u = this.unit(v);
    if (!u) return;
    if (this.pcpus[u.pcpu]!.curr === u) this.tickle(u.pcpu);
    else if (u.onRunq >= 0) this.runqRemove(u);
  }

  yield(v: Vcpu): void {
    const u = this.unit(v);
    if (!u) return;
    u.yieldFlag = true;
    if (this.pcpus[u.pcpu]!.curr === u) this.tickle(u.pcpu);
  }

  adjust(d: Domain): void {
    // A changed hard affinity may forbid where a vCPU sits: move it.
    for (const v of d.vcpus) {
      const u = this.unit(v);
      if (!u || this.allowed(u, u.pcpu)) continue;
      if (this.pcpus[u.pcpu]!.curr === u) this.tickle(u.pcpu);
      else if (u.onRunq >= 0) {
        this.runqRemove(u);
        this.wake(v);
      } else u.pcpu = this.pickCpu(u);
    }
  }

  // --- run queues ---------------------------------------------------------------------------

  private runqInsert(p: CschedPcpu, u: CschedUnit): void {
    const q = p.runq;
    let i = 0;
    while (i < q.length && q[i]!.pri >= u.pri) i++;
    // A yielding vCPU goes behind one lower-priority vCPU too (credit.c's __runq_insert).
    if (u.yieldFlag && i < q.length) i++;
    q.splice(i, 0, u);
    u.onRunq = p.id;
  }

  private runqRemove(u: CschedUnit): void {
    const q = this.pcpus[u.onRunq]!.runq;
    const i = q.indexOf(u);
    if (i >= 0) q.splice(i, 1);
    u.onRunq = -1;
  }

  /** csched_res_pick: stay if idle there, else an idle allowed pCPU, else the least loaded. */
  private pickCpu(u: CschedUnit): number {
    const allowed = this.pcpus.map((p) => p.id).filter((c) => this.allowed(u, c));
    if (allowed.length === 0) return u.pcpu;
    if (allowed.includes(u.pcpu) && this.isIdle(u.pcpu)) return u.pcpu;
    const idle = allowed.find((c) => this.isIdle(c));
    if (idle !== undefined) return idle;
    if (allowed.includes(u.pcpu)) return u.pcpu;
    return allowed.reduce((a, b) => (this.pcpus[b]!.runq.length < this.pcpus[a]!.runq.length ? b : a));
  }

  /** __runq_tickle: preempt here if better, otherwise wake an idle pCPU that could steal it. */
  private runqTickle(cpu: number, u: CschedUnit): void {
    const cur = this.pcpus[cpu]!.curr;
    if (cur === null) {
      this.tickle(cpu);
      return;
    }
    const idlers = this.pcpus.filter((p) => p.id !== cpu && this.isIdle(p.id) && this.allowed(u, p.id));
    if (u.pri > cur.pri && idlers.length === 0) this.tickle(cpu);
    else if (idlers.length > 0) this.tickle(idlers[0]!.id);
  }

  // --- accounting ---------------------------------------------------------------------------

  private burn(u: CschedUnit, now: number): void {
    if (now <= u.lastBurn) return;
    const val = (now - u.lastBurn) * CSCHED_CREDITS_PER_MSEC + u.residual;
    const credits = Math.floor(val / NS_PER_MS);
    u.residual = val - credits * NS_PER_MS;
    u.credit -= credits;
    u.lastBurn = now;
  }

  /** The 10 ms tick on `cpu`: debit the running vCPU, activate it, end its boost, sort runq. */
  tick(cpu: number, now = this.clock()): void {
    const p = this.pcpus[cpu]!;
    const u = p.curr;
    if (u) {
      this.burn(u, now);
      if (!u.active) u.active = true;
      if (u.pri === CSCHED_PRI.TS_BOOST) u.pri = CSCHED_PRI.TS_UNDER;
    }
    if (p.sortGen !== this.sortGen) {
      // Stable sort: FIFO within a priority.
      const sorted = [...p.runq].sort((a, b) => b.pri - a.pri);
      p.runq.splice(0, p.runq.length, ...sorted);
      p.sortGen = this.sortGen;
    }
  }

  /** csched_acct, once per time slice: share the pool's credit among active vCPUs by weight. */
  account(now = this.clock()): void {
    const byDom = new Map<Domain, CschedUnit[]>();
    for (const u of this.units) {
      if (!u.active) continue;
      const list = byDom.get(u.v.domain) ?? [];
      list.push(u);
      byDom.set(u.v.domain, list);
    }
    let weightTotal = 0;
    for (const [d, list] of byDom) weightTotal += d.weight * list.length;
    if (weightTotal === 0) return;
    const cpt = this.creditsPerTslice;
    const creditTotal = cpt * this.pcpus.length;
    for (const [d, list] of byDom) {
      const n = list.length;
      let fair = Math.ceil((creditTotal * d.weight * n) / weightTotal);
      let peak = n * cpt;
      let capPerUnit = 0;
      if (d.cap) {
        const capCredits = Math.ceil((d.cap * cpt) / 100);
        if (capCredits < peak) peak = capCredits;
        capPerUnit = Math.ceil(capCredits / n);
      }
      if (fair > peak) fair = peak;
      const perUnit = Math.ceil(fair / n);
      for (const u of list) {
        // Bring the running vCPU's debit up to date first.
        if (this.pcpus[u.pcpu]!.curr === u) this.burn(u, now);
        u.credit += perUnit;
        if (u.credit < 0) {
          u.pri = CSCHED_PRI.TS_OVER;
          if (d.cap && u.credit < -capPerUnit && !u.v.parked) this.park(u, true);
          if (u.credit < -cpt) u.credit = -cpt;
        } else {
          u.pri = CSCHED_PRI.TS_UNDER;
          if (u.v.parked) this.park(u, false);
          if (u.credit > cpt) {
            u.active = false;
            u.credit = Math.trunc(u.credit / 2);
          }
        }
      }
    }
    this.sortGen++;
  }

  private park(u: CschedUnit, parked: boolean): void {
    u.v.parked = parked;
    this.stats[parked ? 'parks' : 'unparks']++;
    if (this.hv) this.hv.vcpuChanged(u.v);
    else if (parked) this.sleep(u.v);
    else this.wake(u.v);
  }

  // --- the decision -------------------------------------------------------------------------

  /** csched_schedule: pick what `cpu` runs next and for how long; performs the runstate switch. */
  schedule(cpu: number, now = this.clock()): ScheduleDecision {
    this.stats.schedules++;
    const p = this.pcpus[cpu]!;
    const scurr = p.curr;
    const tslice = this.tsliceNs;
    if (scurr) {
      this.burn(scurr, now);
      const runnable = scurr.v.isRunnable() && this.allowed(scurr, cpu) && this.units.has(scurr);
      const ratelimitNs = this.ratelimitUs * 1000;
      if (runnable && ratelimitNs > 0 && !scurr.yieldFlag) {
        const runtime = now - scurr.startTime;
        if (runtime < ratelimitNs) return { next: scurr.v, sliceNs: ratelimitNs - runtime };
      }
      if (runnable) this.runqInsert(p, scurr);
      scurr.yieldFlag = false;
    }
    let snext: CschedUnit | null = p.runq[0] ?? null;
    if (snext === null || snext.pri <= CSCHED_PRI.TS_OVER) {
      const stolen = this.loadBalance(cpu, snext ? snext.pri : CSCHED_PRI.IDLE);
      if (stolen) snext = stolen;
      else if (snext) this.runqRemove(snext);
    } else this.runqRemove(snext);

    if (snext !== scurr) {
      this.stats.switches++;
      if (scurr) scurr.v.setRunstate(scurr.v.idleRunstate(), now);
      else p.idleNs += now - p.idleSince;
      if (snext) {
        snext.v.setRunstate('running', now);
        snext.startTime = now;
        snext.lastBurn = now;
        snext.pcpu = cpu;
        snext.v.pcpu = cpu;
      } else p.idleSince = now;
    }
    p.curr = snext;
    return { next: snext?.v ?? null, sliceNs: snext ? tslice : -1 };
  }

  /** csched_load_balance: steal the first peer vCPU better than `pri` that may run here. */
  private loadBalance(cpu: number, pri: number): CschedUnit | null {
    const n = this.pcpus.length;
    for (let k = 1; k < n; k++) {
      const peer = this.pcpus[(cpu + k) % n]!;
      for (const u of peer.runq) {
        if (u.pri <= pri) break;
        if (!this.allowed(u, cpu)) continue;
        this.runqRemove(u);
        this.stats.steals++;
        return u;
      }
    }
    return null;
  }

  /** Idle time of a pCPU up to `now` (XEN_SYSCTL_getcpuinfo). */
  idleTime(cpu: number, now = this.clock()): number {
    const p = this.pcpus[cpu]!;
    return p.idleNs + (p.curr === null ? now - p.idleSince : 0);
  }
}
