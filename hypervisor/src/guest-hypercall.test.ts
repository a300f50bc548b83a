import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DOMID_SELF, Gfn, SHUTDOWN, XenErrno } from '@xenlab/xen-public';
import { SharedMemory } from '@xenlab/ring-buffers';
import { Hypervisor } from './hypervisor.ts';
import { MachineMemory } from './mm/machine-memory.ts';
import { populatePhysmap } from './mm/memory.ts';
import { CreditScheduler } from './sched/credit.ts';
import { PcpuDriver, type VcpuRunner } from './sched/pcpu.ts';
import { WorkerX86Runner } from './sched/pcpu-threads.ts';
import { makeGuest, makeHost } from './test-helpers.ts';
import { X86Runner } from './x86-runner.ts';
import type { Domain } from './domain.ts';

/** console_io write "hello hypercall\n"; sched_op shutdown(poweroff); hlt */
function program(): number[] {
  const msg = [...new TextEncoder().encode('hello hypercall\n')];
  const at = 0x1000 + 26;
  return [
    0xb8, 18, 0, 0xbb, 0, 0, 0xb9, msg.length, 0, 0xbe, at & 0xff, at >> 8, 0xcd, 0x82,
    0xb8, 29, 0, 0xbb, 2, 0, 0xb9, 0, 0, 0xcd, 0x82, 0xf4, ...msg,
  ];
}

async function runUntil(hv: Hypervisor, d: Domain, runner: VcpuRunner & { setContext(v: Domain['vcpus'][number], r: object): void }, credit: CreditScheduler): Promise<void> {
  const pcpus = new PcpuDriver(hv, credit, () => runner);
  runner.setContext(d.vcpus[0]!, { cs: 0, ip: 0x1000, ds: 0 });
  hv.unpauseDomain(d);
  pcpus.start();
  try {
    const deadline = Date.now() + 10_000;
    while (!d.isShuttingDown) {
      if (Date.now() > deadline) throw new Error(`no shutdown: ${JSON.stringify(hv.console.read().text)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    pcpus.stop();
  }
}

describe('guest hypercalls (int 82h)', () => {
  it('console_io write and sched_op shutdown from guest code (main-thread pCPU)', async () => {
    const credit = new CreditScheduler({ nrPcpus: 1 });
    const { hv } = makeHost(256, { sched: credit });
    const d = makeGuest(hv, {}, 4);
    populatePhysmap(hv, d, { domid: DOMID_SELF, extent_start: [0, 1] });
    hv.mem.frame(d.p2m.lookup(Gfn(1))!).set(program());
    await runUntil(hv, d, new X86Runner(hv), credit);
    expect(hv.console.read().text).toContain(`(d${d.domid}) hello hypercall\n`);
    expect(d.shutdownCode).toBe(SHUTDOWN.poweroff);
  });

  it('the same on a worker pCPU thread', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xenlab-ghc-'));
    const shm = SharedMemory.create(join(dir, 'mem'), 256 * 4096);
    const credit = new CreditScheduler({ nrPcpus: 1 });
    const hv = new Hypervisor({ memory: new MachineMemory(shm.buffer), nrPcpus: 1, sched: credit });
    const x86 = new WorkerX86Runner(hv, join(dir, 'mem'), 1);
    try {
      const d = hv.createDomain({ max_vcpus: 1 });
      d.maxPages = 4;
      populatePhysmap(hv, d, { domid: DOMID_SELF, extent_start: [0, 1] });
      hv.mem.frame(d.p2m.lookup(Gfn(1))!).set(program());
      await runUntil(hv, d, x86, credit);
      expect(hv.console.read().text).toContain(`(d${d.domid}) hello hypercall\n`);
    } finally {
      await x86.close();
      shm.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 20_000);

  it('bad guest hypercalls return -errno in AX', () => {
    const { hv } = makeHost(256);
    const d = makeGuest(hv, {}, 4);
    const v = d.vcpus[0]!;
    const f = { ax: 0, bx: 0, cx: 0, dx: 0, sp: 0, bp: 0, si: 0, di: 0, cs: 0, ds: 0, es: 0, ss: 0, ip: 0, flags: 0 };
    expect(hv.guestHypercall(v, { ...f, ax: 77 })).toBe(-XenErrno.ENOSYS);
    expect(hv.guestHypercall(v, { ...f, ax: 18, bx: 0, cx: 5000 })).toBe(-XenErrno.EINVAL);
    expect(hv.guestHypercall(v, { ...f, ax: 18, bx: 0, cx: 4, ds: 0x9000 })).toBe(-XenErrno.EFAULT); // no RAM there
    expect(hv.guestHypercall(v, { ...f, ax: 32, bx: 4, cx: 99 })).toBe(-XenErrno.EINVAL);
    expect(d.isShuttingDown).toBe(false);
  });
});
