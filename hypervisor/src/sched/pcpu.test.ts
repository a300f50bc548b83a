import { describe, expect, it } from 'vitest';
import { DOMID_SELF, Gfn, RUNSTATE } from '@xenlab/xen-public';
import { populatePhysmap } from '../mm/memory.ts';
import { makeHost } from '../test-helpers.ts';
import { X86Runner } from '../x86-runner.ts';
import { CreditScheduler } from './credit.ts';
import { PcpuDriver } from './pcpu.ts';

describe('credit scheduler on a real-time pCPU with real guest code', () => {
  it('two spinning guests with weights 256:512 on one pCPU share it about 1:2', async () => {
    const credit = new CreditScheduler({ nrPcpus: 1 });
    const { hv } = makeHost(256, { sched: credit });
    const x86 = new X86Runner(hv);
    const pcpus = new PcpuDriver(hv, credit, (d) => x86.runnerFor(d));
    const doms = [256, 512].map((weight) => {
      const d = hv.createDomain({ max_vcpus: 1 });
      d.maxPages = 4;
      d.weight = weight;
      populatePhysmap(hv, d, { domid: DOMID_SELF, extent_start: [0, 1] });
      hv.mem.frame(d.p2m.lookup(Gfn(1))!).set([0xeb, 0xfe]); // jmp $
      x86.setContext(d.vcpus[0]!, { cs: 0, ip: 0x1000 });
      hv.unpauseDomain(d);
      return d;
    });
    pcpus.start();
    await new Promise((r) => setTimeout(r, 1500));
    pcpus.stop();
    const [a, b] = doms.map((d) => d.vcpus[0]!.runstateTimes(hv.now())[RUNSTATE.running]!);
    const ratio = b! / a!;
    expect(ratio).toBeGreaterThan(1.6);
    expect(ratio).toBeLessThan(2.4);
  }, 10_000);
});
