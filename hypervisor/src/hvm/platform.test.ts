import { describe, expect, it } from 'vitest';
import { DOMID_SELF, Gfn, VIRQ, XEN_DOMCTL_CDF } from '@xenlab/xen-public';
import { populatePhysmap } from '../mm/memory.ts';
import { CreditScheduler } from '../sched/credit.ts';
import { PcpuDriver } from '../sched/pcpu.ts';
import { makeGuest, makeHost } from '../test-helpers.ts';
import { X86Runner } from '../x86-runner.ts';

// IVT[8] = 0000:1100; PIC ICW1-4 (base 08h), unmask IRQ0; PIT ch0 mode 2 divisor 1193 (1 kHz); sti; hlt; jmp hlt
const MAIN = [
  0xc7, 0x06, 0x20, 0x00, 0x00, 0x11, 0xc7, 0x06, 0x22, 0x00, 0x00, 0x00,
  0xb0, 0x11, 0xe6, 0x20, 0xb0, 0x08, 0xe6, 0x21, 0xb0, 0x04, 0xe6, 0x21, 0xb0, 0x01, 0xe6, 0x21, 0xb0, 0xfe, 0xe6, 0x21,
  0xb0, 0x34, 0xe6, 0x43, 0xb0, 0xa9, 0xe6, 0x40, 0xb0, 0x04, 0xe6, 0x40,
  0xfb, 0xf4, 0xeb, 0xfd,
];
// push ax; mov al,'T'; out 0E9h,al; mov al,20h; out 20h,al (EOI); pop ax; iret
const HANDLER = [0x50, 0xb0, 0x54, 0xe6, 0xe9, 0xb0, 0x20, 0xe6, 0x20, 0x58, 0xcf];

describe('HVM platform: PIC + PIT emulated in the hypervisor', () => {
  it('a guest that programs the PIT gets timer interrupts through its PIC and IVT, waking from HLT', async () => {
    const credit = new CreditScheduler({ nrPcpus: 1 });
    const { hv } = makeHost(256, { sched: credit });
    const x86 = new X86Runner(hv);
    const pcpus = new PcpuDriver(hv, credit, (d) => x86.runnerFor(d));
    const d = makeGuest(hv, { flags: XEN_DOMCTL_CDF.hvm }, 8);
    populatePhysmap(hv, d, { domid: DOMID_SELF, extent_start: [0, 1] });
    const code = hv.mem.frame(d.p2m.lookup(Gfn(1))!);
    code.set(MAIN);
    code.set(HANDLER, 0x100);
    x86.setContext(d.vcpus[0]!, { cs: 0, ip: 0x1000, ds: 0, ss: 0, sp: 0x0ffe });
    hv.unpauseDomain(d);
    pcpus.start();
    try {
      const deadline = Date.now() + 5000;
      while (x86.stats.consoleBytes < 5) {
        if (Date.now() > deadline) throw new Error(`no ticks: ${JSON.stringify(hv.platform.stats)} ${JSON.stringify(x86.stats)}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    } finally {
      pcpus.stop();
      hv.platform.stopAll();
    }
    expect(hv.platform.stats.injected).toBeGreaterThanOrEqual(5);
    // between ticks the guest sleeps in HLT (blocked), woken by each interrupt
    const [, , blocked] = d.vcpus[0]!.runstateTimes(hv.now());
    expect(blocked!).toBeGreaterThan(0);
  });

  it('set_timer_op raises VIRQ_TIMER once at the deadline (PV timer)', async () => {
    const { hv } = makeHost(256);
    const d = makeGuest(hv);
    const port = hv.evtchn.bindVirq(d, VIRQ.TIMER, 0);
    hv.setTimer(d, hv.now() + 5e6);
    expect(hv.sharedInfo(d).isPending(port)).toBe(false);
    const deadline = Date.now() + 2000;
    while (!hv.sharedInfo(d).isPending(port)) {
      if (Date.now() > deadline) throw new Error('timer did not fire');
      await new Promise((r) => setTimeout(r, 2));
    }
    hv.setTimer(d, hv.now() + 1e9);
    hv.cancelTimer(d);
  });
});
