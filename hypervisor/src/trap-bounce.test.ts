import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DOMID_SELF, Gfn, HypercallClient, type TrapEvent } from '@xenlab/xen-public';
import { HypercallServer } from './hypercall-server.ts';
import { populatePhysmap } from './mm/memory.ts';
import { CreditScheduler } from './sched/credit.ts';
import { PcpuDriver } from './sched/pcpu.ts';
import { makeGuest, makeHost } from './test-helpers.ts';
import { X86Runner } from './x86-runner.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('PV trap table: INT n bounces to the kernel process and returns with iret', () => {
  it('the shim sees the registers, changes them, and the guest continues with its answer', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xenlab-trap-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const credit = new CreditScheduler({ nrPcpus: 1 });
    const { hv } = makeHost(256, { sched: credit });
    const x86 = new X86Runner(hv);
    const server = new HypercallServer(hv, { socketPath: join(dir, 's'), machineMemoryPath: join(dir, 'm'), credit, x86 });
    await server.listen();
    cleanups.push(() => server.close());
    const pcpus = new PcpuDriver(hv, credit, (d) => x86.runnerFor(d));

    const d = makeGuest(hv, {}, 8);
    populatePhysmap(hv, d, { domid: DOMID_SELF, extent_start: [0, 1] });
    // mov ah,0Eh; mov al,'X'; int 13h; out 0E9h,al; mov al,0Ah; out 0E9h,al; hlt
    hv.mem.frame(d.p2m.lookup(Gfn(1))!).set([0xb4, 0x0e, 0xb0, 0x58, 0xcd, 0x13, 0xe6, 0xe9, 0xb0, 0x0a, 0xe6, 0xe9, 0xf4]);
    x86.setContext(d.vcpus[0]!, { cs: 0, ip: 0x1000, ss: 0, sp: 0x0ffe });

    const shim = await HypercallClient.connect(join(dir, 's'), server.issueToken(d.domid), { owner: true });
    cleanups.push(() => shim.close());
    await shim.call('set_trap_table', 'set_trap_table', [{ vector: 0x13 }]);
    const traps: TrapEvent[] = [];
    const irets: Promise<unknown>[] = [];
    shim.onTrap((ev) => {
      traps.push(ev);
      // serve it: answer AL='K', set CF (awaited below, before the connection closes)
      irets.push(shim.call('iret', 'iret', { vcpu: ev.vcpu, frame: { ...ev.frame, ax: (ev.frame.ax & 0xff00) | 0x4b, flags: ev.frame.flags | 1 } }));
    });
    await expect(shim.call('iret', 'iret', { vcpu: 0, frame: traps[0]?.frame ?? ({} as never) })).rejects.toMatchObject({ errno: 'EINVAL' });

    hv.unpauseDomain(d);
    pcpus.start();
    cleanups.push(() => pcpus.stop());
    const deadline = Date.now() + 5000;
    while (!hv.console.read().text.includes(`(d${d.domid}) K`)) {
      if (Date.now() > deadline) throw new Error(`guest did not continue: ${JSON.stringify(hv.console.read().text)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all(irets);
    expect(traps).toHaveLength(1);
    expect(traps[0]).toMatchObject({ event: 'trap', vcpu: 0, vector: 0x13, kind: 'int' });
    expect(traps[0]!.frame.ax).toBe(0x0e58);
    expect(traps[0]!.frame.ip).toBe(0x1006); // past the INT, where IRET returns
    expect(x86.getContext(d.vcpus[0]!).flags & 1).toBe(1);
  });

  it('a trap with no kernel process connected crashes the domain', async () => {
    const credit = new CreditScheduler({ nrPcpus: 1 });
    const { hv } = makeHost(256, { sched: credit });
    const x86 = new X86Runner(hv);
    const d = makeGuest(hv, {}, 8);
    populatePhysmap(hv, d, { domid: DOMID_SELF, extent_start: [0, 1] });
    hv.mem.frame(d.p2m.lookup(Gfn(1))!).set([0xcd, 0x13, 0xf4]);
    d.trapVectors = [0x13];
    x86.setContext(d.vcpus[0]!, { cs: 0, ip: 0x1000 });
    const r = await x86.run(d.vcpus[0]!, 1e6);
    expect(r.exit).toBe('trap');
    hv.bounceTrap(d.vcpus[0]!, r.trap!);
    expect(d.isShuttingDown).toBe(true);
    expect(hv.console.read().text).toMatch(/no kernel process to serve it/);
  });
});
