import { describe, expect, it } from 'vitest';
import { DOMID_SELF, EVTCHNSTAT, VIRQ, XenError } from '@xenlab/xen-public';
import type { Domain } from './domain.ts';
import { makeGuest, makeHost } from './test-helpers.ts';

function setup() {
  const kicks: string[] = [];
  const { hv, dom0 } = makeHost(256, { onEventPending: (d, v) => kicks.push(`d${d.domid}v${v}`) });
  const a = makeGuest(hv);
  const b = makeGuest(hv);
  return { hv, dom0, a, b, kicks };
}

describe('event channels', () => {
  it('alloc_unbound + bind_interdomain + send, both directions, with kicks', () => {
    const { hv, a, b, kicks } = setup();
    const pa = hv.evtchn.allocUnbound(a, DOMID_SELF, b.domid);
    expect(pa).toBe(1); // port 0 is reserved
    expect(hv.evtchn.status(a, DOMID_SELF, pa)).toEqual({ status: EVTCHNSTAT.unbound, vcpu: 0, dom: b.domid });
    const { localPort: pb, notify } = hv.evtchn.bindInterdomain(b, a.domid, pa);
    expect(notify.remote_dom).toBe(a.domid);
    expect(notify.remote_port).toBe(pa);
    expect(hv.sharedInfo(b).isPending(pb)).toBe(true); // new local port starts pending
    expect(hv.evtchn.status(b, DOMID_SELF, pb)).toMatchObject({ status: EVTCHNSTAT.interdomain, dom: a.domid, port: pa });
    kicks.length = 0;
    hv.evtchn.send(b, pb);
    expect(hv.sharedInfo(a).isPending(pa)).toBe(true);
    expect(kicks).toEqual([`d${a.domid}v0`]);
    hv.evtchn.send(b, pb); // already pending: no second kick
    expect(kicks).toHaveLength(1);
    expect(hv.sharedInfo(a).scan(0)).toEqual([pa]);
    hv.evtchn.send(a, pa);
    expect(hv.sharedInfo(b).scan(0)).toEqual([pb]);
  });

  it('refuses binds that were not offered, and bad ports', () => {
    const { hv, dom0, a, b } = setup();
    const pa = hv.evtchn.allocUnbound(a, DOMID_SELF, b.domid);
    expect(() => hv.evtchn.bindInterdomain(dom0, a.domid, pa)).toThrow(/EINVAL/); // reserved for b
    expect(() => hv.evtchn.bindInterdomain(b, a.domid, 77)).toThrow(/EINVAL/);
    expect(() => hv.evtchn.bindInterdomain(b, 555, 1)).toThrow(/ESRCH/);
    expect(() => hv.evtchn.send(a, 0)).toThrow(/EINVAL/);
    expect(() => hv.evtchn.send(a, 4096)).toThrow(/EINVAL/);
    expect(() => hv.evtchn.close(a, 99)).toThrow(/EINVAL/);
    // unprivileged alloc_unbound for someone else
    expect(() => hv.evtchn.allocUnbound(a, b.domid, a.domid)).toThrow(/EPERM/);
    // privileged may (the toolstack sets up the xenstore/console channels this way)
    const p = hv.evtchn.allocUnbound(dom0, a.domid, dom0.domid);
    expect(hv.evtchn.status(dom0, a.domid, p).status).toBe(EVTCHNSTAT.unbound);
    expect(() => hv.evtchn.status(b, a.domid, p)).toThrow(/EPERM/);
  });

  it('close returns the peer to unbound; it can be rebound', () => {
    const { hv, a, b } = setup();
    const pa = hv.evtchn.allocUnbound(a, DOMID_SELF, b.domid);
    const { localPort: pb } = hv.evtchn.bindInterdomain(b, a.domid, pa);
    hv.evtchn.close(b, pb);
    expect(hv.evtchn.status(a, DOMID_SELF, pa)).toMatchObject({ status: EVTCHNSTAT.unbound, dom: b.domid });
    expect(hv.evtchn.status(b, DOMID_SELF, pb).status).toBe(EVTCHNSTAT.closed);
    const again = hv.evtchn.bindInterdomain(b, a.domid, pa);
    expect(again.localPort).toBe(pb); // lowest free port reused
  });

  it('masked ports stay pending until unmask, which re-delivers', () => {
    const { hv, a, kicks } = setup();
    const p = hv.evtchn.bindIpi(a, 0);
    hv.sharedInfo(a).setMask(p, true);
    kicks.length = 0;
    hv.evtchn.send(a, p);
    expect(hv.sharedInfo(a).isPending(p)).toBe(true);
    expect(kicks).toEqual([]);
    hv.evtchn.unmask(a, p);
    expect(kicks).toEqual([`d${a.domid}v0`]);
    expect(hv.sharedInfo(a).scan(0)).toEqual([p]);
  });

  it('virq binding rules', () => {
    const { hv, a } = setup();
    const t = hv.evtchn.bindVirq(a, VIRQ.TIMER, 0);
    expect(hv.evtchn.status(a, DOMID_SELF, t)).toMatchObject({ status: EVTCHNSTAT.virq, virq: VIRQ.TIMER });
    expect(() => hv.evtchn.bindVirq(a, VIRQ.TIMER, 0)).toThrow(/EEXIST/);
    expect(() => hv.evtchn.bindVirq(a, 99, 0)).toThrow(/EINVAL/);
    expect(() => hv.evtchn.bindVirq(a, VIRQ.TIMER, 5)).toThrow(/ENOENT/);
    expect(() => hv.evtchn.send(a, t)).toThrow(/EINVAL/);
    expect(hv.evtchn.sendVirq(a, VIRQ.TIMER)).toBe(true);
    expect(hv.sharedInfo(a).isPending(t)).toBe(true);
    hv.evtchn.close(a, t);
    expect(hv.evtchn.sendVirq(a, VIRQ.TIMER)).toBe(false);
  });

  it('runs out of ports with ENOSPC', () => {
    const { hv } = makeHost();
    const d: Domain = makeGuest(hv, { max_evtchn_port: 3 });
    hv.evtchn.bindIpi(d, 0);
    hv.evtchn.bindIpi(d, 0);
    hv.evtchn.bindIpi(d, 0);
    expect(() => hv.evtchn.bindIpi(d, 0)).toThrow(XenError);
    expect(() => hv.evtchn.bindIpi(d, 0)).toThrow(/ENOSPC/);
  });

  it('a blocked vCPU is woken by an event; block returns at once if one is due', () => {
    const { hv, a, b } = setup();
    hv.unpauseDomain(a);
    const pa = hv.evtchn.allocUnbound(a, DOMID_SELF, b.domid);
    const { localPort: pb } = hv.evtchn.bindInterdomain(b, a.domid, pa);
    const v = a.vcpus[0]!;
    hv.blockVcpu(v);
    expect(v.blocked).toBe(true);
    hv.evtchn.send(b, pb);
    expect(v.blocked).toBe(false);
    hv.blockVcpu(v); // upcall still pending: no block
    expect(v.blocked).toBe(false);
  });

  it('destroying a domain unbinds its peers and bumps fast-path generations', () => {
    const { hv, a, b } = setup();
    const pa = hv.evtchn.allocUnbound(a, DOMID_SELF, b.domid);
    const { localPort: pb, notify } = hv.evtchn.bindInterdomain(b, a.domid, pa);
    const word = new Int32Array(hv.mem.buffer, notify.bound_addr, 1);
    expect(Atomics.load(word, 0)).toBe(notify.generation);
    hv.destroyDomain(a);
    expect(Atomics.load(word, 0)).not.toBe(notify.generation);
    expect(hv.evtchn.status(b, DOMID_SELF, pb)).toMatchObject({ status: EVTCHNSTAT.unbound, dom: a.domid });
  });
});
