import { describe, expect, it } from 'vitest';
import { CSCHED_PRI } from './credit.ts';
import { FakeGuest, Simulation } from './simulate.ts';

const MS = 1_000_000;
const S = 1000 * MS;

describe('credit scheduler (virtual time)', () => {
  it('weights 256:512 on one pCPU share CPU 1:2 within 5%', () => {
    const sim = new Simulation({ nrPcpus: 1 });
    const a = sim.addDomain({ weight: 256 });
    const b = sim.addDomain({ weight: 512 });
    sim.run(5 * S);
    const ratio = sim.cpuTime(b) / sim.cpuTime(a);
    expect(Math.abs(ratio - 2) / 2).toBeLessThan(0.05);
    // and the pCPU was never idle
    expect(sim.cpuTime(a) + sim.cpuTime(b)).toBeGreaterThan(4.99 * S);
  });

  it('equal weights share equally; three domains 1:1:2', () => {
    const sim = new Simulation({ nrPcpus: 1 });
    const a = sim.addDomain();
    const b = sim.addDomain();
    const c = sim.addDomain({ weight: 512 });
    sim.run(6 * S);
    const t = [a, b, c].map((d) => sim.cpuTime(d) / (6 * S));
    expect(t[0]).toBeCloseTo(0.25, 1);
    expect(t[1]).toBeCloseTo(0.25, 1);
    expect(t[2]).toBeCloseTo(0.5, 1);
  });

  it('a cap limits a CPU hog even on an otherwise idle pCPU', () => {
    const sim = new Simulation({ nrPcpus: 1 });
    const d = sim.addDomain({ cap: 25 });
    sim.run(6 * S);
    const share = sim.cpuTime(d) / (6 * S);
    expect(share).toBeGreaterThan(0.2);
    expect(share).toBeLessThan(0.3);
    expect(sim.sched.stats.parks).toBeGreaterThan(0);
    // uncapped, it takes everything
    const sim2 = new Simulation({ nrPcpus: 1 });
    const e = sim2.addDomain();
    sim2.run(1 * S);
    expect(sim2.cpuTime(e) / S).toBeGreaterThan(0.99);
  });

  it('hard affinity is respected', () => {
    const sim = new Simulation({ nrPcpus: 2 });
    const pinned = sim.addDomain({ vcpus: 2, affinity: [[1], [1]] });
    const free = sim.addDomain({ vcpus: 1 });
    sim.run(2 * S);
    expect(sim.ranOn[0]!.has(pinned.domid)).toBe(false);
    expect(sim.ranOn[1]!.has(pinned.domid)).toBe(true);
    for (const v of pinned.vcpus) expect(v.pcpu).toBe(1);
    // the unpinned domain gets pCPU 0 to itself
    expect(sim.cpuTime(free) / (2 * S)).toBeGreaterThan(0.95);
  });

  it('load balancing spreads four hogs over two pCPUs', () => {
    const sim = new Simulation({ nrPcpus: 2 });
    const doms = [0, 1, 2, 3].map(() => sim.addDomain());
    sim.run(4 * S);
    const total = doms.reduce((s, d) => s + sim.cpuTime(d), 0);
    expect(total / (4 * S)).toBeGreaterThan(1.98); // both pCPUs busy
    for (const d of doms) expect(sim.cpuTime(d) / (4 * S)).toBeCloseTo(0.5, 1);
    expect(sim.sched.idleTime(0, sim.now) + sim.sched.idleTime(1, sim.now)).toBeLessThan(0.01 * S);
  });

  it('an I/O-bound vCPU is boosted on wake and sees low latency beside a hog', () => {
    const sim = new Simulation({ nrPcpus: 1 });
    sim.addDomain(); // hog
    const io = sim.addDomain({ guest: () => new FakeGuest(0.2 * MS, 5 * MS) });
    sim.run(2 * S);
    // Boosted on its first wake; it rarely runs across a tick, so it keeps BOOST (as in credit.c).
    expect(sim.sched.stats.boosts).toBeGreaterThan(0);
    // it wanted 0.2/5.2 of the CPU and gets (nearly) all of that despite the hog
    const want = 0.2 / 5.2;
    expect(sim.cpuTime(io) / (2 * S)).toBeGreaterThan(want * 0.8);
    // and was blocked, not waiting in the runq, most of the time
    const [, runnable, blocked] = io.vcpus[0]!.runstateTimes(sim.now);
    expect(blocked!).toBeGreaterThan(10 * runnable!);
  });

  it('runstate times add up and priorities follow credit', () => {
    const sim = new Simulation({ nrPcpus: 1 });
    const a = sim.addDomain();
    const b = sim.addDomain();
    sim.run(1 * S);
    for (const d of [a, b]) {
      const t = d.vcpus[0]!.runstateTimes(sim.now);
      expect(t.reduce((x, y) => x + y, 0)).toBe(sim.now);
    }
    const pris = [a, b].map((d) => sim.sched.unit(d.vcpus[0]!).pri);
    for (const p of pris) expect([CSCHED_PRI.TS_UNDER, CSCHED_PRI.TS_OVER, CSCHED_PRI.TS_BOOST]).toContain(p);
  });

  it('a paused domain gets no CPU; unpausing resumes it', () => {
    const sim = new Simulation({ nrPcpus: 1 });
    const a = sim.addDomain();
    const b = sim.addDomain();
    sim.hv.pauseDomain(a);
    sim.run(1 * S);
    const t = sim.cpuTime(a);
    expect(sim.cpuTime(b)).toBeGreaterThan(0.95 * S);
    expect(a.vcpus[0]!.runstate).toBe('offline');
    sim.hv.unpauseDomain(a);
    sim.run(1 * S);
    expect(sim.cpuTime(a) - t).toBeGreaterThan(0.4 * S);
  });
});
