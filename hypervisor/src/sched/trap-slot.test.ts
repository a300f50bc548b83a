/**
 * PV traps through the trap slot on a real pCPU worker thread: the worker posts the trap in the
 * kernel's page and takes the answer within the slice; a kernel too slow for the worker's wait
 * gets the trap parked and resumes the vCPU with iret (also when its iret overtakes the slice's
 * return to the main thread). And the registration's checks.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DOMID_SELF, Gfn, HypercallClient, TRAP_SLOT_ANSWER_BELL_OFFSET, TRAP_SLOT_BELL_OFFSET, TRAP_SLOT_STATE, TrapSlot } from '@xenlab/xen-public';
import { Doorbell } from '@xenlab/ring-buffers';
import { HypercallServer } from '../hypercall-server.ts';
import { populatePhysmap } from '../mm/memory.ts';
import { workerHost } from '../test-helpers.ts';
import { PcpuDriver } from './pcpu.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function host() {
  const { dir, memPath, shm, credit, hv, x86 } = workerHost(cleanups, { prefix: 'xenlab-trapslot-' });
  // Generous (the worker sleeps on the answer doorbell after 50 us), so the in-time test holds on
  // a loaded machine, where this thread may wait several time slices for a core.
  x86.trapWaitUs = 2_000_000;
  const server = new HypercallServer(hv, { socketPath: join(dir, 's'), machineMemoryPath: memPath, credit, x86 });
  await server.listen();
  cleanups.push(() => server.close());
  const pcpus = new PcpuDriver(hv, credit, (d) => x86.runnerFor(d));
  // A guest: three times `mov ah,0Eh; mov al,'a'+i; int 10h; out 0E9h,al`, then a newline and hlt.
  const d = hv.createDomain({ max_vcpus: 1 });
  d.maxPages = 4;
  populatePhysmap(hv, d, { domid: DOMID_SELF, extent_start: [0, 1, 2] });
  const code: number[] = [];
  for (let i = 0; i < 3; i++) code.push(0xb4, 0x0e, 0xb0, 0x61 + i, 0xcd, 0x10, 0xe6, 0xe9);
  code.push(0xb0, 0x0a, 0xe6, 0xe9, 0xf4);
  hv.mem.frame(d.p2m.lookup(Gfn(1))!).set(code);
  x86.setContext(d.vcpus[0]!, { cs: 0, ip: 0x1000, ss: 0, sp: 0x0ffe });
  const kernel = await HypercallClient.connect(join(dir, 's'), server.issueToken(d.domid), { owner: true });
  cleanups.push(() => kernel.close());
  await kernel.call('set_trap_table', 'set_trap_table', [{ vector: 0x10 }]);
  const base = hv.mem.frame(d.p2m.lookup(Gfn(2))!).byteOffset;
  const slot = new TrapSlot(new Uint32Array(shm.buffer, base, 1024), 0);
  const bell = new Doorbell(shm.buffer as ArrayBuffer, base + TRAP_SLOT_BELL_OFFSET);
  const answered = new Doorbell(shm.buffer as ArrayBuffer, base + TRAP_SLOT_ANSWER_BELL_OFFSET);
  await kernel.call('set_trap_table', 'xenlab_trap_slot', { gfn: 2 });
  let started = false;
  const start = () => {
    started = true;
    hv.unpauseDomain(d);
    pcpus.start();
    cleanups.push(() => pcpus.stop());
  };
  const run = async (until: string) => {
    if (!started) start();
    const deadline = Date.now() + 10_000;
    while (!hv.console.read().text.includes(until)) {
      if (Date.now() > deadline) throw new Error(`guest did not get there: ${JSON.stringify(hv.console.read().text)}`);
      await new Promise((r) => setTimeout(r, 2));
    }
  };
  return { hv, d, x86, kernel, slot, bell, answered, run, start };
}

describe('the PV trap slot', () => {
  it('a kernel that answers in time: the worker takes the registers and the slice goes on (no socket event, no iret)', async () => {
    const h = await host();
    let socketTraps = 0;
    h.kernel.onTrap(() => socketTraps++);
    // The kernel: this thread spinning on the slot (the pCPU thread runs the guest meanwhile, and
    // the handshake needs no main thread): answer each INT 10h with AL uppercased, in time.
    h.start();
    await new Promise((r) => setTimeout(r, 1)); // the slice request is on its way to the worker
    let served = 0;
    const end = Date.now() + 20_000;
    while (served < 3 && Date.now() < end) {
      if (h.slot.state !== TRAP_SLOT_STATE.PENDING) continue;
      const f = h.slot.frame();
      expect(h.slot.vector).toBe(0x10);
      expect(h.slot.complete({ ...f, ax: (f.ax & 0xff00) | ((f.ax & 0xff) - 0x20) })).toBe(true);
      h.answered.ring(); // wakes the worker if it went to sleep on the answer
      served++;
    }
    await h.run(`(d${h.d.domid}) ABC`);
    expect(served).toBe(3);
    expect(socketTraps).toBe(0);
    expect(h.d.counters['trap.int10']).toBe(3);
    expect(h.d.counters['trap.slot']).toBe(3);
  });

  it('a kernel too slow for the worker: the trap is parked, the kernel irets, the guest goes on', async () => {
    const h = await host();
    h.x86.trapWaitUs = 50;
    // Answer only after the worker has given up (parked), through iret.
    const answers: Promise<unknown>[] = [];
    const serve = setInterval(() => {
      const st = h.slot.state;
      if (st !== TRAP_SLOT_STATE.PARKED) return;
      const f = h.slot.frame();
      expect(h.slot.complete(f)).toBe(false); // parked: the slot says use iret
      h.slot.reset();
      answers.push(h.kernel.call('iret', 'iret', { vcpu: 0, frame: { ...f, ax: (f.ax & 0xff00) | 0x2a } }));
    }, 5);
    cleanups.push(() => clearInterval(serve));
    await h.run(`(d${h.d.domid}) ***`);
    await Promise.all(answers);
    expect(h.d.counters['trap.parked']).toBe(3);
    expect(h.d.counters['trap.int10']).toBe(3);
  });

  it('an iret that overtakes the parked slice on its way to the main thread is kept for it, once', async () => {
    const h = await host();
    const v = h.d.vcpus[0]!;
    const frame = { ...h.slot.frame(), ax: 0x1234, ip: 0x1006 };
    // The kernel saw PARKED and answered before the worker's slice came back: accepted, kept.
    await h.kernel.call('iret', 'iret', { vcpu: 0, frame });
    expect(v.earlyIret).toMatchObject({ ax: 0x1234, ip: 0x1006 });
    // A second one has no trap to belong to.
    await expect(h.kernel.call('iret', 'iret', { vcpu: 0, frame })).rejects.toMatchObject({ errno: 'EINVAL' });
    // The slice arrives: the vCPU resumes with the kept registers instead of blocking.
    let got: Record<string, number> | undefined;
    h.hv.parkTrap(v, (regs) => (got = regs));
    expect(got).toMatchObject({ ax: 0x1234, ip: 0x1006 });
    expect(v.trapPending).toBe(false);
    expect(v.earlyIret).toBeUndefined();
    // With nothing kept, a parked trap blocks the vCPU until the iret.
    h.hv.parkTrap(v, () => {
      throw new Error('no early iret to apply');
    });
    expect(v.trapPending).toBe(true);
  });

  it('registration: only RAM of the caller; -1 unregisters; a bogus iret outside a trap still fails', async () => {
    const h = await host();
    await expect(h.kernel.call('set_trap_table', 'xenlab_trap_slot', { gfn: 200 })).rejects.toMatchObject({ errno: 'EINVAL' });
    await expect(h.kernel.call('set_trap_table', 'xenlab_trap_slot', { gfn: -5 })).rejects.toMatchObject({ errno: 'EINVAL' });
    expect(h.d.trapSlotAddr).toBeDefined();
    await h.kernel.call('set_trap_table', 'xenlab_trap_slot', { gfn: -1 });
    expect(h.d.trapSlotAddr).toBeUndefined();
    await expect(h.kernel.call('iret', 'iret', { vcpu: 0, frame: h.slot.frame() })).rejects.toMatchObject({ errno: 'EINVAL' });
  });
});
