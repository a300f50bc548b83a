import { describe, expect, it } from 'vitest';
import { DOMID_SELF, Gfn, HVM_PARAM, IOREQ_DIR_BIT, IOREQ_STATE, IOREQ_STATE_MASK, XEN_DOMCTL_CDF, ioreq } from '@xenlab/xen-public';
import { populatePhysmap } from '../mm/memory.ts';
import { CreditScheduler } from '../sched/credit.ts';
import { PcpuDriver } from '../sched/pcpu.ts';
import { makeGuest, makeHost } from '../test-helpers.ts';
import { X86Runner } from '../x86-runner.ts';

const IOREQ_GFN = 0x10;
const F = ioreq.fields;

describe('ioreq: port I/O of an HVM guest goes to its device model', () => {
  it('IN is answered by the device model over the ioreq page and event channel', async () => {
    const credit = new CreditScheduler({ nrPcpus: 1 });
    const { hv, dom0 } = makeHost(256, { sched: credit });
    const x86 = new X86Runner(hv);
    const pcpus = new PcpuDriver(hv, credit, (d) => x86.runnerFor(d));
    const d = makeGuest(hv, { flags: XEN_DOMCTL_CDF.hvm }, 32);
    populatePhysmap(hv, d, { domid: DOMID_SELF, extent_start: [0, 1, IOREQ_GFN] });
    // in al,71h; out 0E9h,al; mov al,0Ah; out 0E9h,al; hlt
    hv.mem.frame(d.p2m.lookup(Gfn(1))!).set([0xe4, 0x71, 0xe6, 0xe9, 0xb0, 0x0a, 0xe6, 0xe9, 0xf4]);
    // The toolstack: ioreq page and device-model domain.
    d.hvmParams.set(HVM_PARAM.IOREQ_PFN, IOREQ_GFN);
    d.hvmParams.set(HVM_PARAM.DM_DOMAIN, 0);
    hv.ioreq.configure(d);
    const page = new DataView(hv.mem.buffer, hv.mem.addr(d.p2m.lookup(Gfn(IOREQ_GFN))!), 4096);
    const u8 = new Uint8Array(page.buffer, page.byteOffset, 4096);
    const vpEport = page.getUint32(F.vp_eport.offset, true);
    expect(vpEport).toBeGreaterThan(0);
    // The guest cannot touch Xen's port; the device model binds to it (no fast path: Xen consumes it).
    expect(() => hv.evtchn.close(d, vpEport)).toThrow(/EINVAL/);
    const { localPort: dmPort, notify } = hv.evtchn.bindInterdomain(dom0, d.domid, vpEport);
    expect(notify.bound_addr).toBe(0);
    hv.sharedInfo(dom0).scan(0);

    x86.setContext(d.vcpus[0]!, { cs: 0, ip: 0x1000 });
    hv.unpauseDomain(d);
    pcpus.start();
    let served = 0;
    try {
      const deadline = Date.now() + 5000;
      while (!hv.console.read().text.includes(`(d${d.domid}) A`)) {
        if (Date.now() > deadline) throw new Error(`no answer: ${JSON.stringify(hv.console.read().text)} ${JSON.stringify(hv.ioreq.stats)}`);
        if (hv.sharedInfo(dom0).scan(0).includes(dmPort)) {
          const bits = Atomics.load(u8, F.state_bits.offset);
          expect(bits & IOREQ_STATE_MASK).toBe(IOREQ_STATE.READY);
          expect(bits & IOREQ_DIR_BIT).toBeTruthy();
          expect(Number(page.getBigUint64(F.addr.offset, true))).toBe(0x71);
          expect(page.getUint32(F.size.offset, true)).toBe(1);
          expect(d.vcpus[0]!.ioreqPending).toBe(true); // waiting for us, not runnable
          expect(d.vcpus[0]!.isRunnable()).toBe(false);
          page.setBigUint64(F.data.offset, 0x41n, true);
          Atomics.store(u8, F.state_bits.offset, (bits & ~IOREQ_STATE_MASK) | IOREQ_STATE.IORESP_READY);
          hv.evtchn.send(dom0, dmPort);
          served++;
        }
        await new Promise((r) => setTimeout(r, 2));
      }
    } finally {
      pcpus.stop();
    }
    expect(served).toBe(1);
    expect(hv.ioreq.stats).toMatchObject({ sent: 1, completed: 1 });
    expect(Atomics.load(u8, F.state_bits.offset) & IOREQ_STATE_MASK).toBe(IOREQ_STATE.NONE);
  });

  it('without a device model, ports read all-ones', async () => {
    const { hv } = makeHost(256);
    const x86 = new X86Runner(hv);
    const d = makeGuest(hv, { flags: XEN_DOMCTL_CDF.hvm }, 8);
    populatePhysmap(hv, d, { domid: DOMID_SELF, extent_start: [0, 1] });
    hv.mem.frame(d.p2m.lookup(Gfn(1))!).set([0xe4, 0x71, 0xf4]);
    x86.setContext(d.vcpus[0]!, { cs: 0, ip: 0x1000 });
    const v = d.vcpus[0]!;
    const r = await x86.run(v, 1e6); // an HVM guest's port I/O leaves the CPU...
    expect(r.exit).toBe('io');
    hv.ioreq.send(v, r.io!); // ...and with no device model is answered at once
    expect(v.ioreqPending).toBe(false);
    expect((await x86.run(v, 1e6)).exit).toBe('blocked');
    expect(x86.getContext(v).ax & 0xff).toBe(0xff);
    expect(hv.ioreq.stats.unclaimed).toBe(1);
  });
});

describe('ioreq: MMIO outside RAM goes to the device model as type COPY', () => {
  it('a read is re-executed with the answer; a write arrives with its data', async () => {
    const { IOREQ_TYPE } = await import('@xenlab/xen-public');
    const credit = new CreditScheduler({ nrPcpus: 1 });
    const { hv, dom0 } = makeHost(256, { sched: credit });
    const x86 = new X86Runner(hv);
    const pcpus = new PcpuDriver(hv, credit, (d) => x86.runnerFor(d));
    const d = makeGuest(hv, { flags: XEN_DOMCTL_CDF.hvm }, 32);
    populatePhysmap(hv, d, { domid: DOMID_SELF, extent_start: [0, 1, IOREQ_GFN] });
    // mov ax,0A000h; mov ds,ax; mov al,[0]; out 0E9h,al; mov byte [1],55h; mov al,0Ah; out 0E9h,al; hlt
    hv.mem.frame(d.p2m.lookup(Gfn(1))!).set([0xb8, 0x00, 0xa0, 0x8e, 0xd8, 0xa0, 0x00, 0x00, 0xe6, 0xe9, 0xc6, 0x06, 0x01, 0x00, 0x55, 0xb0, 0x0a, 0xe6, 0xe9, 0xf4]);
    d.hvmParams.set(HVM_PARAM.IOREQ_PFN, IOREQ_GFN);
    hv.ioreq.configure(d);
    const page = new DataView(hv.mem.buffer, hv.mem.addr(d.p2m.lookup(Gfn(IOREQ_GFN))!), 4096);
    const u8 = new Uint8Array(page.buffer, page.byteOffset, 4096);
    const { localPort } = hv.evtchn.bindInterdomain(dom0, d.domid, page.getUint32(F.vp_eport.offset, true));
    hv.sharedInfo(dom0).consume([localPort]);
    x86.setContext(d.vcpus[0]!, { cs: 0, ip: 0x1000, ss: 0, sp: 0xffe });
    hv.unpauseDomain(d);
    pcpus.start();
    const seen: { type: number; addr: number; dir: number; data: number }[] = [];
    try {
      const deadline = Date.now() + 5000;
      while (!(hv.console.read().text.includes(`(d${d.domid}) M`) && seen.length >= 2)) {
        if (Date.now() > deadline) throw new Error(`stuck: ${JSON.stringify(hv.console.read().text)} ${JSON.stringify(seen)}`);
        if (hv.sharedInfo(dom0).consume([localPort]).length) {
          const bits = Atomics.load(u8, F.state_bits.offset);
          const req = { type: page.getUint8(F.type.offset), addr: Number(page.getBigUint64(F.addr.offset, true)), dir: bits & IOREQ_DIR_BIT ? 1 : 0, data: Number(page.getBigUint64(F.data.offset, true)) };
          seen.push(req);
          if (req.dir) page.setBigUint64(F.data.offset, 0x4dn, true);
          Atomics.store(u8, F.state_bits.offset, (bits & ~IOREQ_STATE_MASK) | IOREQ_STATE.IORESP_READY);
          hv.evtchn.send(dom0, localPort);
        }
        await new Promise((r) => setTimeout(r, 2));
      }
    } finally {
      pcpus.stop();
    }
    expect(seen[0]).toMatchObject({ type: IOREQ_TYPE.COPY, addr: 0xa0000, dir: 1 });
    expect(seen[1]).toMatchObject({ type: IOREQ_TYPE.COPY, addr: 0xa0001, dir: 0, data: 0x55 });
  });
});
