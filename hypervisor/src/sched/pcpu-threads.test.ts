import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DOMID_SELF, Gfn, RUNSTATE, SHUTDOWN } from '@xenlab/xen-public';
import { SharedMemory } from '@xenlab/ring-buffers';
import { Hypervisor } from '../hypervisor.ts';
import { MachineMemory } from '../mm/machine-memory.ts';
import { populatePhysmap } from '../mm/memory.ts';
import { CreditScheduler } from './credit.ts';
import { PcpuDriver } from './pcpu.ts';
import { WorkerX86Runner } from './pcpu-threads.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('pCPU worker threads', () => {
  it('run guests on the x86 CPU in parallel threads over the shared machine-memory file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xenlab-pcpu-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const shm = SharedMemory.create(join(dir, 'mem'), 512 * 4096);
    cleanups.push(() => shm.close());
    const credit = new CreditScheduler({ nrPcpus: 2 });
    const hv = new Hypervisor({ memory: new MachineMemory(shm.buffer), nrPcpus: 2, sched: credit });
    const x86 = new WorkerX86Runner(hv, join(dir, 'mem'), 2);
    cleanups.push(() => x86.close());
    const pcpus = new PcpuDriver(hv, credit, (d) => x86.runnerFor(d));

    const build = (code: number[]) => {
      const d = hv.createDomain({ max_vcpus: 1 });
      d.maxPages = 4;
      populatePhysmap(hv, d, { domid: DOMID_SELF, extent_start: [0, 1] });
      hv.mem.frame(d.p2m.lookup(Gfn(1))!).set(code);
      x86.setContext(d.vcpus[0]!, { cs: 0, ip: 0x1000, ds: 0, ss: 0, sp: 0xfffe });
      hv.unpauseDomain(d);
      return d;
    };
    const text = [...new TextEncoder().encode('hi from a pCPU thread\n')];
    const at = 0x1000 + 12;
    const hello = build([0xbe, at & 0xff, at >> 8, 0xb9, text.length, 0, 0xba, 0xe9, 0x00, 0xf3, 0x6e, 0xf4, ...text]);
    const spin = build([0xeb, 0xfe]);
    const wild = build([0xea, 0x00, 0x00, 0x00, 0xf0]);
    pcpus.start();
    cleanups.push(() => pcpus.stop());

    const deadline = Date.now() + 15_000;
    const ran = () => spin.vcpus[0]!.runstateTimes(hv.now())[RUNSTATE.running]!;
    while (!(hv.console.read().text.includes(`(d${hello.domid}) hi from a pCPU thread`) && wild.isShuttingDown && x86.stats.instructions > 200_000)) {
      if (Date.now() > deadline) throw new Error(`not done in 15 s: ${JSON.stringify(hv.console.read().text)} spin ran ${ran()} ns, ${x86.stats.instructions} instructions`);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(wild.shutdownCode).toBe(SHUTDOWN.crash);
    expect(hello.vcpus[0]!.blocked).toBe(true);
    expect(x86.getContext(hello.vcpus[0]!).halted).toBe(true);
    expect(ran()).toBeGreaterThan(0);
    // Every slice's time on its pCPU, as the worker measured it, is in the domain's counters.
    expect(spin.counters['pcpu.slices']).toBeGreaterThan(0);
    expect(spin.counters['pcpu.run_ns']).toBeGreaterThan(0);
    expect(spin.counters['pcpu.run_ns']).toBeLessThan((Date.now() - deadline + 15_000) * 1e6);
    expect(hello.counters['pcpu.slices']).toBeGreaterThan(0);
    if (existsSync('/proc/thread-self/schedstat')) {
      // The worker thread's own CPU time: some, and never more than a CPU's worth of the test.
      expect(spin.counters['pcpu.cpu_ns']).toBeGreaterThan(0);
      expect(spin.counters['pcpu.cpu_ns']).toBeLessThan((Date.now() - deadline + 15_000) * 1e6);
      expect(spin.counters['pcpu.os_wait_ns']).toBeGreaterThanOrEqual(0);
    }
  }, 30_000);
});

describe('pCPU worker threads and ioreqs', () => {
  it('an IN on a worker pCPU is answered by the device model and completed on the next slice', async () => {
    const { HVM_PARAM, IOREQ_STATE, IOREQ_STATE_MASK, ioreq, XEN_DOMCTL_CDF } = await import('@xenlab/xen-public');
    const dir = mkdtempSync(join(tmpdir(), 'xenlab-pcpu-io-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const shm = SharedMemory.create(join(dir, 'mem'), 512 * 4096);
    cleanups.push(() => shm.close());
    const credit = new CreditScheduler({ nrPcpus: 2 });
    const hv = new Hypervisor({ memory: new MachineMemory(shm.buffer), nrPcpus: 2, sched: credit });
    const dom0 = hv.createDomain({ domain: 0, max_vcpus: 1 }, { privileged: true });
    const x86 = new WorkerX86Runner(hv, join(dir, 'mem'), 2);
    cleanups.push(() => x86.close());
    const pcpus = new PcpuDriver(hv, credit, (d) => x86.runnerFor(d));
    const d = hv.createDomain({ max_vcpus: 1, flags: XEN_DOMCTL_CDF.hvm });
    d.maxPages = 8;
    populatePhysmap(hv, d, { domid: DOMID_SELF, extent_start: [0, 1, 2] });
    hv.mem.frame(d.p2m.lookup(Gfn(1))!).set([0xe4, 0x71, 0xe6, 0xe9, 0xb0, 0x0a, 0xe6, 0xe9, 0xf4]);
    d.hvmParams.set(HVM_PARAM.IOREQ_PFN, 2);
    hv.ioreq.configure(d);
    const F = ioreq.fields;
    const page = new DataView(hv.mem.buffer, hv.mem.addr(d.p2m.lookup(Gfn(2))!), 4096);
    const u8 = new Uint8Array(page.buffer, page.byteOffset, 4096);
    const { localPort } = hv.evtchn.bindInterdomain(dom0, d.domid, page.getUint32(F.vp_eport.offset, true));
    hv.sharedInfo(dom0).scan(0);
    x86.setContext(d.vcpus[0]!, { cs: 0, ip: 0x1000 });
    hv.unpauseDomain(d);
    pcpus.start();
    cleanups.push(() => pcpus.stop());
    const deadline = Date.now() + 15_000;
    while (!hv.console.read().text.includes(`(d${d.domid}) Z`)) {
      if (Date.now() > deadline) throw new Error(`no answer: ${JSON.stringify(hv.console.read().text)}`);
      if (hv.sharedInfo(dom0).scan(0).includes(localPort)) {
        page.setBigUint64(F.data.offset, 0x5an, true);
        const bits = Atomics.load(u8, F.state_bits.offset);
        Atomics.store(u8, F.state_bits.offset, (bits & ~IOREQ_STATE_MASK) | IOREQ_STATE.IORESP_READY);
        hv.evtchn.send(dom0, localPort);
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    expect(hv.ioreq.stats.completed).toBe(1);
  }, 30_000);
});

describe('pCPU worker threads: preemption', () => {
  it('pausing a domain stops its spinning vCPU well before the end of its 30 ms slice', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xenlab-pcpu-pre-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const shm = SharedMemory.create(join(dir, 'mem'), 256 * 4096);
    cleanups.push(() => shm.close());
    const credit = new CreditScheduler({ nrPcpus: 1 });
    const hv = new Hypervisor({ memory: new MachineMemory(shm.buffer), nrPcpus: 1, sched: credit });
    const x86 = new WorkerX86Runner(hv, join(dir, 'mem'), 1);
    cleanups.push(() => x86.close());
    const pcpus = new PcpuDriver(hv, credit, (d) => x86.runnerFor(d));
    const d = hv.createDomain({ max_vcpus: 1 });
    d.maxPages = 4;
    populatePhysmap(hv, d, { domid: DOMID_SELF, extent_start: [0, 1] });
    hv.mem.frame(d.p2m.lookup(Gfn(1))!).set([0xeb, 0xfe]);
    x86.setContext(d.vcpus[0]!, { cs: 0, ip: 0x1000 });
    hv.unpauseDomain(d);
    pcpus.start();
    cleanups.push(() => pcpus.stop());
    const v = d.vcpus[0]!;
    const deadline = Date.now() + 10_000;
    while (x86.stats.instructions === 0 || v.runstate !== 'running') {
      if (Date.now() > deadline) throw new Error('the spinner never ran');
      await new Promise((r) => setTimeout(r, 1));
    }
    await new Promise((r) => setTimeout(r, 3)); // well inside a slice
    const t0 = performance.now();
    hv.pauseDomain(d);
    while (v.runstate === 'running') {
      if (performance.now() - t0 > 1000) throw new Error('still running 1 s after pause');
      await new Promise((r) => setImmediate(r));
    }
    expect(performance.now() - t0).toBeLessThan(20);
    expect(v.runstate).toBe('offline');
  }, 30_000);
});
