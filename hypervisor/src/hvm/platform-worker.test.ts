/**
 * PIC and PIT emulated on the pCPU worker thread (platform.ts SharedPlatform over
 * platform-state.ts): a port exit to them completes inside the slice, with no main-thread hop;
 * the PIT's tick (a host timer on the main thread) and the PIC deliveries still meet in the
 * same shared state.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DOMID_SELF, Gfn, XEN_DOMCTL_CDF } from '@xenlab/xen-public';
import { populatePhysmap } from '../mm/memory.ts';
import { PcpuDriver } from '../sched/pcpu.ts';
import { workerHost } from '../test-helpers.ts';
import { newPlatformState, platformState, withPlatformLock } from './platform-state.ts';
import { Pic8259 } from './pic.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function host() {
  const { credit, hv, x86 } = workerHost(cleanups, { prefix: 'xenlab-platform-worker-' });
  const pcpus = new PcpuDriver(hv, credit, (d) => x86.runnerFor(d));
  cleanups.push(() => {
    pcpus.stop();
    hv.platform.stopAll();
  });
  const guest = (code: number[], handler: number[] = []) => {
    const d = hv.createDomain({ max_vcpus: 1, flags: XEN_DOMCTL_CDF.hvm });
    d.maxPages = 8;
    populatePhysmap(hv, d, { domid: DOMID_SELF, extent_start: [0, 1] });
    const page = hv.mem.frame(d.p2m.lookup(Gfn(1))!);
    page.set(code);
    page.set(handler, 0x100);
    x86.setContext(d.vcpus[0]!, { cs: 0, ip: 0x1000, ds: 0, ss: 0, sp: 0x0ffe });
    hv.unpauseDomain(d);
    return d;
  };
  const until = async (what: string, ok: () => boolean) => {
    const deadline = Date.now() + 10_000;
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(hv.platform.stats)} ${JSON.stringify(x86.stats)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  return { hv, x86, pcpus, guest, until };
}

/** IVT[8] = 0000:1100; PIC ICW1-4 (base 08h), unmask IRQ0; PIT ch0 mode 2 divisor 1193 (1 kHz). */
const TIMER_SETUP = [
  0xc7, 0x06, 0x20, 0x00, 0x00, 0x11, 0xc7, 0x06, 0x22, 0x00, 0x00, 0x00,
  0xb0, 0x11, 0xe6, 0x20, 0xb0, 0x08, 0xe6, 0x21, 0xb0, 0x04, 0xe6, 0x21, 0xb0, 0x01, 0xe6, 0x21, 0xb0, 0xfe, 0xe6, 0x21,
  0xb0, 0x34, 0xe6, 0x43, 0xb0, 0xa9, 0xe6, 0x40, 0xb0, 0x04, 0xe6, 0x40,
];
/** At 0000:1100: push ax; mov al,'T'; out 0E9h,al; mov al,20h; out 20h,al (EOI); pop ax; iret */
const TICK_HANDLER = [0x50, 0xb0, 0x54, 0xe6, 0xe9, 0xb0, 0x20, 0xe6, 0x20, 0x58, 0xcf];

describe('PIC and PIT on the pCPU worker', () => {
  it('a thousand PIC reads complete inside the slice: no exit reaches the main thread', async () => {
    const { hv, x86, pcpus, guest, until } = host();
    // mov al,5Ah; out 21h,al (IMR); mov cx,1000; l: in al,21h; loop l; out 0E9h,al; hlt
    const d = guest([0xb0, 0x5a, 0xe6, 0x21, 0xb9, 0xe8, 0x03, 0xe4, 0x21, 0xe2, 0xfc, 0xe6, 0xe9, 0xf4]);
    pcpus.start();
    await until('the guest to print its IMR', () => x86.stats.consoleBytes >= 1);
    await until('the vCPU to halt', () => d.vcpus[0]!.blocked);
    expect(hv.console.read().text).not.toMatch(/crash/);
    expect(x86.getContext(d.vcpus[0]!).ax & 0xff).toBe(0x5a);
    expect(hv.platform.stats.workerExits).toBe(1001);
    expect(x86.stats.slices).toBeLessThan(10);
  }, 30_000);

  it('a guest programming PIC and PIT on the worker gets timer interrupts (tick on the main thread, EOI on the worker)', async () => {
    const { hv, x86, pcpus, guest, until } = host();
    guest([...TIMER_SETUP, 0xfb, 0xf4, 0xeb, 0xfd], TICK_HANDLER); // sti; hlt; jmp hlt
    pcpus.start();
    await until('five ticks', () => x86.stats.consoleBytes >= 5);
    expect(hv.platform.stats.ticks).toBeGreaterThanOrEqual(5);
    expect(hv.platform.stats.workerExits).toBeGreaterThanOrEqual(9 + 4); // the set-up plus an EOI per tick
  }, 30_000);

  it('a vCPU spinning without exits takes each timer interrupt mid-slice (the worker polls its PIC between chunks)', async () => {
    const { hv, x86, pcpus, guest, until } = host();
    // As above, but `sti; jmp $` instead of HLT: no exit ever ends the slice.
    guest([...TIMER_SETUP, 0xfb, 0xeb, 0xfe], TICK_HANDLER);
    pcpus.start();
    await until('100 ticks of the host timer', () => hv.platform.stats.ticks >= 100);
    await until('the slice to report its console bytes', () => x86.stats.consoleBytes > 0);
    // Taken only at slice ends, the ticks would coalesce to about one per 30 ms slice.
    expect(x86.stats.consoleBytes).toBeGreaterThan(x86.stats.slices * 3);
  }, 30_000);

  it('the shared state is the PIC itself: views on two "threads" see one chip, and the lock serialises them', () => {
    const { sab, state } = newPlatformState();
    const a = new Pic8259(state.pic);
    const b = new Pic8259(platformState(sab).pic); // what a worker attaches to (the same SharedArrayBuffer)
    withPlatformLock(state.lock, () => a.write(0x21, 0xfe));
    expect(b.read(0x21)).toBe(0xfe);
    expect(new Int32Array(sab, 0, 1)[0]).toBe(0); // released
    expect({ ...state.pic.master }).toMatchObject({ imr: 0xfe, vectorBase: 0x08, needIcw4: false });
  });
});
