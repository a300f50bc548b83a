import { describe, expect, it } from 'vitest';
import { DOMID_SELF, SHUTDOWN, VIRQ, XEN_DOMCTL_CDF, XEN_DOMINF, XenError } from '@xenlab/xen-public';
import { makeGuest, makeHost } from './test-helpers.ts';
import { populatePhysmap } from './mm/memory.ts';

describe('domains', () => {
  it('allocates increasing domids, honours a requested one, refuses duplicates', () => {
    const { hv } = makeHost();
    expect(makeGuest(hv).domid).toBe(1);
    expect(makeGuest(hv).domid).toBe(2);
    expect(makeGuest(hv, { domain: 7 }).domid).toBe(7);
    expect(() => makeGuest(hv, { domain: 7 })).toThrow(/EEXIST/);
    expect(makeGuest(hv, { domain: 0x7ff0 }).domid).toBe(3);
  });

  it('validates createdomain arguments with EINVAL', () => {
    const { hv } = makeHost();
    for (const bad of [{ max_vcpus: 0 }, { max_vcpus: 33 }, { max_vcpus: 1, flags: 1 << 20 }, { max_vcpus: 1, flags: XEN_DOMCTL_CDF.hap }, { max_vcpus: 1, handle: 'zz' }]) {
      expect(() => hv.createDomain(bad)).toThrow(XenError);
    }
  });

  it('getdomaininfo flags: created paused, unpause, shutdown code, next-higher iteration', () => {
    const { hv } = makeHost();
    const d = makeGuest(hv, { flags: XEN_DOMCTL_CDF.hvm | XEN_DOMCTL_CDF.hap });
    let info = hv.getDomainInfo(d.domid);
    expect(info.flags & XEN_DOMINF.paused).toBeTruthy();
    expect(info.flags & XEN_DOMINF.hvm_guest).toBeTruthy();
    expect(info.flags & XEN_DOMINF.hap).toBeTruthy();
    hv.unpauseDomain(d);
    expect(hv.getDomainInfo(d.domid).flags & XEN_DOMINF.paused).toBe(0);
    expect(() => hv.unpauseDomain(d)).toThrow(/EINVAL/);
    hv.shutdownDomain(d, SHUTDOWN.crash);
    info = hv.getDomainInfo(d.domid);
    expect(info.flags & XEN_DOMINF.shutdown).toBeTruthy();
    expect((info.flags >> 16) & 0xff).toBe(SHUTDOWN.crash);
    hv.shutdownDomain(d, SHUTDOWN.poweroff); // first reason sticks
    expect((hv.getDomainInfo(d.domid).flags >> 16) & 0xff).toBe(SHUTDOWN.crash);
    // iteration: asking for a missing domid returns the next higher one
    const e = makeGuest(hv, { domain: 10 });
    expect(hv.getDomainInfo(5).domain).toBe(e.domid);
    expect(() => hv.getDomainInfo(11)).toThrow(/ESRCH/);
  });

  it('blocked flag only when every online vCPU blocks', () => {
    const { hv } = makeHost();
    const d = makeGuest(hv, { max_vcpus: 2 });
    hv.unpauseDomain(d);
    d.vcpus[1]!.online = true;
    hv.vcpuChanged(d.vcpus[1]!);
    hv.blockVcpu(d.vcpus[0]!);
    expect(hv.getDomainInfo(d.domid).flags & XEN_DOMINF.blocked).toBe(0);
    hv.blockVcpu(d.vcpus[1]!);
    expect(hv.getDomainInfo(d.domid).flags & XEN_DOMINF.blocked).toBeTruthy();
    expect(d.vcpus[1]!.runstate).toBe('blocked');
  });

  it('destroy frees everything; a frame mapped by another keeps a dying zombie', () => {
    const { hv, dom0 } = makeHost(256);
    const free0 = hv.frames.freeFrames;
    const d = makeGuest(hv);
    populatePhysmap(hv, d, { domid: DOMID_SELF, extent_start: [0, 1, 2] });
    hv.destroyDomain(d);
    expect(hv.domains.has(d.domid)).toBe(false);
    expect(hv.frames.freeFrames).toBe(free0);

    const e = makeGuest(hv);
    const mfns = populatePhysmap(hv, e, { domid: DOMID_SELF, extent_start: [0] }).extent_start;
    hv.frames.get(mfns[0] as never); // dom0 holds a mapping
    hv.destroyDomain(e);
    expect(hv.domains.has(e.domid)).toBe(true);
    expect(hv.getDomainInfo(e.domid).flags & XEN_DOMINF.dying).toBeTruthy();
    expect(hv.frames.freeFrames).toBe(free0 - 1);
    hv.frames.put(mfns[0] as never);
    expect(hv.domains.has(e.domid)).toBe(false);
    expect(hv.frames.freeFrames).toBe(free0);
    expect(dom0.dying).toBe('alive');
  });

  it('shutdown and destroy raise VIRQ_DOM_EXC on dom0', () => {
    const { hv, dom0 } = makeHost();
    const port = hv.evtchn.bindVirq(dom0, VIRQ.DOM_EXC, 0);
    const d = makeGuest(hv);
    hv.shutdownDomain(d, SHUTDOWN.poweroff);
    expect(hv.sharedInfo(dom0).isPending(port)).toBe(true);
  });
});

describe('console ring VIRQ', () => {
  it('new console output raises VIRQ_CON_RING on dom0', () => {
    const { hv, dom0 } = makeHost();
    const port = hv.evtchn.bindVirq(dom0, VIRQ.CON_RING, 0);
    expect(hv.sharedInfo(dom0).isPending(port)).toBe(false);
    hv.log('something happened');
    expect(hv.sharedInfo(dom0).isPending(port)).toBe(true);
  });
});

describe('vcpu_time_info', () => {
  it('system time is published with an even version after each update', () => {
    let now = 5_000_000;
    const { hv } = makeHost(64, { clock: () => now });
    const d = makeGuest(hv, { max_vcpus: 2 });
    hv.updateTime();
    now = 7_000_000;
    hv.updateTime();
    const dv = new DataView(hv.mem.buffer, hv.mem.addr(d.sharedInfoMfn), 4096);
    for (const v of [0, 1]) {
      const base = v * 64 + 32;
      expect(dv.getUint32(base, true) % 2).toBe(0);
      expect(dv.getUint32(base, true)).toBeGreaterThan(0);
      expect(dv.getBigUint64(base + 16, true)).toBe(7_000_000n);
      expect(dv.getBigUint64(base + 8, true)).toBe(7_000_000n);
    }
  });
});

describe("dom0's external vCPUs (the dom0 process)", () => {
  it('report the pCPU their hard affinity allows (xl vcpu-pin, then xl vcpu-list)', async () => {
    const { dispatch } = await import('./hypercalls.ts');
    const { XEN_VCPUAFFINITY } = await import('@xenlab/xen-public');
    const { hv, dom0 } = makeHost(256, { nrPcpus: 4 });
    const ctx = { hv, caller: dom0, vcpu: 0, conn: { handles: new Set<number>(), ports: new Set<number>(), foreign: [] }, issueToken: () => '' };
    const d = makeGuest(hv, { max_vcpus: 2 });
    for (const v of d.vcpus) {
      v.external = true;
      v.online = true;
      v.placeExternal(hv.nrPcpus);
    }
    const cpu = (vcpu: number) => (dispatch(ctx, 'domctl', 'getvcpuinfo', { domain: d.domid, vcpu }) as { cpu: number }).cpu;
    const pinHard = (vcpu: number, cpumap_hard: number[]) => dispatch(ctx, 'domctl', 'setvcpuaffinity', { domain: d.domid, vcpu, flags: XEN_VCPUAFFINITY.HARD, cpumap_hard });
    expect([cpu(0), cpu(1)]).toEqual([0, 1]); // spread like the pCPUs
    pinHard(0, [2, 3]);
    expect(cpu(0)).toBe(2);
    expect(dispatch(ctx, 'domctl', 'getvcpuaffinity', { domain: d.domid, vcpu: 0 })).toMatchObject({ cpumap_hard: [2, 3] });
    pinHard(1, [1, 3]);
    expect(cpu(1)).toBe(1); // its own slot is allowed: it stays
    pinHard(0, [0, 1, 2, 3]);
    expect(cpu(0)).toBe(0);
  });
});
