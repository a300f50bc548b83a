import { describe, expect, it } from 'vitest';
import { DOMID_SELF, Gfn, SHUTDOWN, XEN_DOMINF } from '@xenlab/xen-public';
import type { Domain } from './domain.ts';
import type { Hypervisor } from './hypervisor.ts';
import { populatePhysmap } from './mm/memory.ts';
import { CreditScheduler } from './sched/credit.ts';
import { PcpuDriver } from './sched/pcpu.ts';
import { makeGuest, makeHost } from './test-helpers.ts';
import { X86Runner } from './x86-runner.ts';

/** mov si,msg; mov cx,len; mov dx,0xE9; rep outsb; hlt; msg — loaded at 0000:1000. */
function helloProgram(text: string): Uint8Array {
  const msg = new TextEncoder().encode(text);
  const at = 0x1000 + 12;
  return new Uint8Array([0xbe, at & 0xff, at >> 8, 0xb9, msg.length, 0, 0xba, 0xe9, 0x00, 0xf3, 0x6e, 0xf4, ...msg]);
}
const spinProgram = new Uint8Array([0xeb, 0xfe]); // jmp $
const wildJump = new Uint8Array([0xea, 0x00, 0x00, 0x00, 0xf0]); // jmp far f000:0000 (no RAM there)

function build(hv: Hypervisor, code: Uint8Array): Domain {
  const d = makeGuest(hv, {}, 16);
  populatePhysmap(hv, d, { domid: DOMID_SELF, extent_start: [0, 1, 2] });
  hv.mem.frame(d.p2m.lookup(Gfn(1))!).set(code);
  return d;
}

describe('x86 vCPU runner', () => {
  it('runs guest code from the P2M; port 0xE9 reaches the console; HLT blocks', async () => {
    const { hv } = makeHost(256);
    const x86 = new X86Runner(hv);
    const d = build(hv, helloProgram('hello from a guest\n'));
    x86.setContext(d.vcpus[0]!, { cs: 0, ip: 0x1000, ss: 0, sp: 0xfffe, ds: 0 });
    expect(x86.runnerFor(d)).toBe(x86);
    const r = await x86.run(d.vcpus[0]!, 1e6);
    expect(r.exit).toBe('blocked');
    expect(hv.console.read().text).toContain(`(d${d.domid}) hello from a guest\n`);
    expect(x86.getContext(d.vcpus[0]!).halted).toBe(true);
  });

  it('a spinning guest is preempted at the end of its budget', async () => {
    const { hv } = makeHost(256);
    const x86 = new X86Runner(hv);
    const d = build(hv, spinProgram);
    x86.setContext(d.vcpus[0]!, { cs: 0, ip: 0x1000 });
    const t0 = performance.now();
    expect((await x86.run(d.vcpus[0]!, 3e6)).exit).toBe('preempted');
    expect(performance.now() - t0).toBeLessThan(500);
    expect(x86.stats.instructions).toBeGreaterThan(1000);
  });

  it('executing outside RAM crashes only that domain (through the pCPU driver)', async () => {
    const credit = new CreditScheduler({ nrPcpus: 1 });
    const { hv } = makeHost(256, { sched: credit });
    const x86 = new X86Runner(hv);
    const pcpus = new PcpuDriver(hv, credit, (d) => x86.runnerFor(d));
    const good = build(hv, helloProgram('still fine\n'));
    const bad = build(hv, wildJump);
    for (const d of [good, bad]) {
      x86.setContext(d.vcpus[0]!, { cs: 0, ip: 0x1000, ds: 0 });
      hv.unpauseDomain(d);
    }
    pcpus.start();
    try {
      const deadline = Date.now() + 5000;
      while (!(bad.isShuttingDown && hv.console.read().text.includes('still fine'))) {
        if (Date.now() > deadline) throw new Error(`not done: ${JSON.stringify(hv.console.read().text)} ${JSON.stringify(credit.stats)} ${bad.vcpus[0]!.runstate} ${good.vcpus[0]!.runstate}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      pcpus.stop();
    }
    expect(bad.shutdownCode).toBe(SHUTDOWN.crash);
    expect(hv.console.read().text).toMatch(/shutdown \(crash\): vCPU 0 fetched instructions from non-RAM at f0000h/);
    expect(good.isShuttingDown).toBe(false);
    expect(hv.getDomainInfo(good.domid).flags & XEN_DOMINF.blocked).toBeTruthy(); // halted, waiting for events
  });
});
