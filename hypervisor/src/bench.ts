/**
 * In-process measurements of the hypervisor's cores, printed as one JSON line; the benchmark
 * suite (`npm run bench -- hypervisor`) runs this file as a child process, since tools never
 * import a process's internals. Each figure comes with its same-run baseline:
 * - scheduler: ns per credit-scheduler decision that switches vCPU, against a 30 ms time slice;
 * - grant copy through the core (validation, pinning, flag updates) against a plain copy.
 */
import { DOMID_SELF, GNTCOPY, GrantFrame, Gfn, DomId } from '@xenlab/xen-public';
import { Hypervisor } from './hypervisor.ts';
import { MachineMemory } from './mm/machine-memory.ts';
import { populatePhysmap } from './mm/memory.ts';
import { Simulation } from './sched/simulate.ts';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function schedSwitchNs(reps: number): { nsPerSwitch: number; switches: number } {
  const samples: number[] = [];
  let switches = 0;
  for (let r = 0; r < reps; r++) {
    // Eight hogs on one pCPU with a 1 ms slice and no rate limit: a decision every virtual ms.
    const sim = new Simulation({ nrPcpus: 1, tsliceMs: 1, ratelimitUs: 0 });
    for (let i = 0; i < 8; i++) sim.addDomain();
    const before = sim.sched.stats.switches;
    const t0 = process.hrtime.bigint();
    sim.run(20e9);
    const ns = Number(process.hrtime.bigint() - t0);
    const n = sim.sched.stats.switches - before;
    switches = n;
    samples.push(ns / n);
  }
  return { nsPerSwitch: median(samples), switches };
}

function grantCopy(bytes: number, iters: number): { coreNs: number; plainNs: number } {
  const hv = new Hypervisor({ memory: new MachineMemory(new ArrayBuffer(512 * 4096)), nrPcpus: 1 });
  const dom0 = hv.createDomain({ domain: 0, max_vcpus: 1 }, { privileged: true });
  const du = hv.createDomain({ max_vcpus: 1 });
  dom0.maxPages = du.maxPages = 64;
  const pages = Math.ceil(bytes / 4096);
  const gfns = Array.from({ length: pages }, (_, i) => i);
  populatePhysmap(hv, dom0, { domid: DOMID_SELF, extent_start: gfns });
  populatePhysmap(hv, du, { domid: DOMID_SELF, extent_start: gfns });
  const gt = new GrantFrame(hv.mem.buffer, hv.mem.addr(du.gnttab.frames[0]!));
  for (let i = 0; i < pages; i++) gt.grant(8 + i, DomId(0), Gfn(i), true);
  const ops = gfns.map((g, i) => ({
    source: { ref: 8 + i, domid: du.domid, offset: 0 },
    dest: { gmfn: g, domid: DOMID_SELF, offset: 0 },
    len: Math.min(4096, bytes - i * 4096),
    flags: GNTCOPY.source_gref,
  }));
  const src = new Uint8Array(bytes);
  const dst = new Uint8Array(bytes);
  const core: number[] = [];
  const plain: number[] = [];
  for (let r = 0; r < 5; r++) {
    let t0 = process.hrtime.bigint();
    for (let k = 0; k < iters; k++) for (const op of ops) if (hv.gnttab.copyOne(dom0, op) !== 0) throw new Error('grant copy failed');
    core.push(Number(process.hrtime.bigint() - t0) / iters);
    t0 = process.hrtime.bigint();
    for (let k = 0; k < iters; k++) dst.set(src);
    plain.push(Number(process.hrtime.bigint() - t0) / iters);
  }
  return { coreNs: median(core), plainNs: median(plain) };
}

const quick = process.argv.includes('--quick');
const out = {
  sched: schedSwitchNs(quick ? 1 : 3),
  grantCopy4k: grantCopy(4096, quick ? 2000 : 20000),
  grantCopy64k: grantCopy(65536, quick ? 200 : 2000),
};
process.stdout.write(JSON.stringify(out) + '\n');
