import { describe, expect, it } from 'vitest';
import { DOMID_SELF, EvtchnNotifier } from '@xenlab/xen-public';
import { makeGuest, makeHost } from './test-helpers.ts';

describe('bound-channel fast path (EvtchnNotifier)', () => {
  it('delivers like EVTCHNOP_send, rings only when the upcall becomes due, and falls back after close', () => {
    const { hv } = makeHost(256);
    const a = makeGuest(hv);
    const b = makeGuest(hv);
    const pa = hv.evtchn.allocUnbound(a, DOMID_SELF, b.domid);
    const { localPort: pb, notify } = hv.evtchn.bindInterdomain(b, a.domid, pa);
    const rings: number[] = [];
    const n = new EvtchnNotifier(hv.mem.buffer as ArrayBuffer, notify, (_buf, off) => ({ ring: () => rings.push(off) }));
    expect(n.trySend()).toBe(true);
    expect(hv.sharedInfo(a).isPending(pa)).toBe(true);
    expect(rings).toEqual([hv.mem.addr(a.evtchnPageMfn)]);
    expect(n.trySend()).toBe(true); // already pending: no second ring
    expect(rings).toHaveLength(1);
    expect(hv.sharedInfo(a).scan(0)).toEqual([pa]);
    // the other direction, from the descriptor status() hands the first end
    const back = hv.evtchn.notifyInfo(a, pa);
    expect(back).toMatchObject({ remote_dom: b.domid, remote_port: pb });
    hv.evtchn.close(a, pa);
    expect(n.valid).toBe(false);
    expect(n.trySend()).toBe(false);
    expect(n.stats).toEqual({ fast: 2, fallback: 1, rings: 1 });
  });

  it('moving the remote port to another vCPU invalidates the descriptor', () => {
    const { hv } = makeHost(256);
    const a = makeGuest(hv, { max_vcpus: 2 });
    const b = makeGuest(hv);
    const pa = hv.evtchn.allocUnbound(a, DOMID_SELF, b.domid);
    const { notify } = hv.evtchn.bindInterdomain(b, a.domid, pa);
    const n = new EvtchnNotifier(hv.mem.buffer as ArrayBuffer, notify, () => ({ ring() {} }));
    expect(n.valid).toBe(true);
    hv.evtchn.bindVcpu(a, pa, 1);
    expect(n.valid).toBe(false);
    const pb = hv.evtchn.status(a, DOMID_SELF, pa).port!;
    expect(hv.evtchn.notifyInfo(b, pb).remote_vcpu).toBe(1); // a fresh descriptor names the new vCPU
  });
});
