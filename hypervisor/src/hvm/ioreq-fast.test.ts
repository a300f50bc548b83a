/**
 * The ioreq cycle in shared memory (ioreq-fast.ts, docs/ioreq-cycle.md): guests on pCPU worker
 * threads, a device model in another thread answering through the slot and the answer doorbell
 * (no event_channel_op send at all), and device models that answer garbage or never answer.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { DOMID_SELF, Gfn, HVM_PARAM, SHUTDOWN, XEN_DOMCTL_CDF, ioreq } from '@xenlab/xen-public';
import { SharedMemory } from '@xenlab/ring-buffers';
import { Hypervisor } from '../hypervisor.ts';
import { MachineMemory } from '../mm/machine-memory.ts';
import { populatePhysmap } from '../mm/memory.ts';
import { CreditScheduler } from '../sched/credit.ts';
import { PcpuDriver } from '../sched/pcpu.ts';
import { WorkerX86Runner } from '../sched/pcpu-threads.ts';
import { EVTCHN_PAGE_DOORBELL_OFFSET } from '../event-channel.ts';
import type { FakeDmData } from './testing/fake-dm-thread.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const IOREQ_GFN = 2;

/** A host with worker pCPUs and dom0; `hvm(code)` builds an HVM guest whose device model runs in `mode`. */
function host(nrPcpus = 2) {
  const dir = mkdtempSync(join(tmpdir(), 'xenlab-ioreq-fast-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'mem');
  const shm = SharedMemory.create(path, 1024 * 4096);
  cleanups.push(() => shm.close());
  const credit = new CreditScheduler({ nrPcpus });
  const hv = new Hypervisor({ memory: new MachineMemory(shm.buffer), nrPcpus, sched: credit });
  hv.ioreq.watchAnswers = true;
  cleanups.push(() => hv.ioreq.stopWatching());
  const dom0 = hv.createDomain({ domain: 0, max_vcpus: 1 }, { privileged: true });
  const x86 = new WorkerX86Runner(hv, path, nrPcpus);
  cleanups.push(() => x86.close());
  const pcpus = new PcpuDriver(hv, credit, (d) => x86.runnerFor(d));
  cleanups.push(() => pcpus.stop());

  const guest = (code: number[], hvm = true) => {
    const d = hv.createDomain({ max_vcpus: 1, flags: hvm ? XEN_DOMCTL_CDF.hvm : 0 });
    d.maxPages = 8;
    populatePhysmap(hv, d, { domid: DOMID_SELF, extent_start: [0, 1, IOREQ_GFN] });
    hv.mem.frame(d.p2m.lookup(Gfn(1))!).set(code);
    x86.setContext(d.vcpus[0]!, { cs: 0, ip: 0x1000, ds: 0, ss: 0, sp: 0xfffe });
    return d;
  };

  /** Configures the ioreq server, binds vp_eport in dom0 and starts a device-model thread. */
  const deviceModel = async (d: ReturnType<typeof guest>, mode: FakeDmData['mode'], value = 0x41) => {
    d.hvmParams.set(HVM_PARAM.IOREQ_PFN, IOREQ_GFN);
    hv.ioreq.configure(d);
    const pageAddr = hv.mem.addr(d.p2m.lookup(Gfn(IOREQ_GFN))!);
    const vpEport = new DataView(hv.mem.buffer, pageAddr, 4096).getUint32(ioreq.fields.vp_eport.offset, true);
    const { notify, localPort } = hv.evtchn.bindInterdomain(dom0, d.domid, vpEport);
    expect(notify.doorbell_addr).toBe(hv.ioreq.answerBellAddr()); // the binding names the answer doorbell
    const control = new Int32Array(new SharedArrayBuffer(8));
    const data: FakeDmData = { machineMemory: path, pageAddr, dmBellAddr: hv.mem.addr(dom0.evtchnPageMfn) + EVTCHN_PAGE_DOORBELL_OFFSET, sharedInfoAddr: hv.mem.addr(dom0.sharedInfoMfn), port: localPort, answerBellAddr: notify.doorbell_addr, mode, value, control };
    const w = new Worker(new URL('./testing/fake-dm-thread-boot.mjs', import.meta.url), { workerData: data });
    cleanups.push(async () => {
      Atomics.store(control, 0, 1);
      await w.terminate();
    });
    await new Promise<void>((r, j) => {
      w.once('message', () => r());
      w.once('error', j);
    });
    return { seen: () => Atomics.load(control, 1) };
  };

  const until = async (what: string, ok: () => boolean, ms = 15_000) => {
    const deadline = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(hv.ioreq.stats)}\n${hv.console.read().text}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  return { hv, dom0, x86, pcpus, guest, deviceModel, until };
}

/** `mov cx,N; l: in al,71h; loop l; out 0E9h,al; mov al,0Ah; out 0E9h,al; hlt` */
const readLoop = (n: number) => [0xb9, n & 0xff, n >> 8, 0xe4, 0x71, 0xe2, 0xfc, 0xe6, 0xe9, 0xb0, 0x0a, 0xe6, 0xe9, 0xf4];

describe('ioreq fast path on the pCPU worker', () => {
  it('a device model answering through the slot and the answer doorbell completes every exit, no socket involved', async () => {
    const { hv, guest, deviceModel, pcpus, until } = host();
    const d = guest(readLoop(300));
    const dm = await deviceModel(d, 'answer', 0x4b); // 'K'
    hv.unpauseDomain(d);
    pcpus.start();
    await until('the guest to print K', () => hv.console.read().text.includes(`(d${d.domid}) K`));
    expect(dm.seen()).toBe(300);
    expect(hv.ioreq.stats.sent).toBe(300);
    expect(hv.ioreq.stats.completed).toBe(300);
    // Most answers come back while the worker waits (fast); the rest through the parked path.
    expect(hv.ioreq.stats.fast + hv.ioreq.stats.parked).toBe(300);
    expect(hv.ioreq.stats.fast).toBeGreaterThan(0);
    expect(hv.ioreq.stats.badResponses).toBe(0);
    expect(d.isShuttingDown).toBe(false);
  }, 30_000);

  it('ports nobody claimed are answered all-ones on the worker without reaching the device model', async () => {
    const { hv, guest, deviceModel, pcpus, until } = host();
    const d = guest(readLoop(5));
    const dm = await deviceModel(d, 'answer');
    hv.ioreq.mapRange(d, 'port', 0x1f0, 0x1f7); // 71h is not claimed
    hv.unpauseDomain(d);
    pcpus.start();
    await until('the guest to print FFh', () => hv.console.read().text.includes(`(d${d.domid}) \u00ff`));
    expect(dm.seen()).toBe(0);
    expect(hv.ioreq.stats.unclaimed).toBe(5);
    expect(hv.ioreq.stats.sent).toBe(0);
  }, 30_000);
});

describe('a hostile or dead device model hurts only its own guest', () => {
  it('garbage in the slot state crashes that guest; another guest keeps running', async () => {
    const { hv, guest, deviceModel, pcpus, until } = host();
    const bad = guest(readLoop(3));
    await deviceModel(bad, 'garbage');
    const good = guest(readLoop(50));
    await deviceModel(good, 'answer', 0x4f); // 'O'
    hv.unpauseDomain(bad);
    hv.unpauseDomain(good);
    pcpus.start();
    await until('the hostile guest to crash', () => bad.isShuttingDown);
    expect(bad.shutdownCode).toBe(SHUTDOWN.crash);
    expect(bad.crashReason).toMatch(/state 14/);
    await until('the other guest to print O', () => hv.console.read().text.includes(`(d${good.domid}) O`));
    expect(good.isShuttingDown).toBe(false);
    hv.destroyDomain(bad);
    expect(hv.domains.get(bad.domid)?.dying ?? 'dead').not.toBe('alive');
  }, 30_000);

  it('a device model that never answers leaves its vCPU blocked (the pCPU runs others) until destroy', async () => {
    const { hv, x86, guest, deviceModel, pcpus, until } = host(1);
    const stuck = guest(readLoop(1));
    const dm = await deviceModel(stuck, 'silent');
    const text = [...new TextEncoder().encode('still here\n')];
    const at = 0x1000 + 12;
    // mov si,text; mov cx,len; mov dx,0E9h; rep outsb; hlt — a PV-less plain guest on the same pCPU
    const other = guest([0xbe, at & 0xff, at >> 8, 0xb9, text.length, 0, 0xba, 0xe9, 0x00, 0xf3, 0x6e, 0xf4, ...text], false);
    hv.unpauseDomain(stuck);
    pcpus.start();
    await until('the silent device model to see the request', () => dm.seen() === 1);
    await until('the vCPU to be handed back blocked on the ioreq', () => stuck.vcpus[0]!.ioreqPending);
    expect(stuck.vcpus[0]!.isRunnable()).toBe(false);
    expect(hv.ioreq.stats.parked).toBe(1);
    hv.unpauseDomain(other);
    await until('the other guest to run on the pCPU', () => hv.console.read().text.includes(`(d${other.domid}) still here`));
    expect(x86.stats.slices).toBeGreaterThan(1);
    hv.destroyDomain(stuck);
    expect(stuck.dying).not.toBe('alive');
  }, 30_000);
});
