/**
 * Per-domain counters and counter marks (sysctl xenlab_domain_counters, domctl
 * xenlab_counters_mark): what is counted, who may read and mark, and that a destroyed domain's
 * final counters stay readable for a while.
 */
import { describe, expect, it } from 'vitest';
import { DOMID_SELF, type DomainCounters } from '@xenlab/xen-public';
import type { Domain } from './domain.ts';
import { dispatch, type CallContext } from './hypercalls.ts';
import type { Hypervisor } from './hypervisor.ts';
import { makeGuest, makeHost } from './test-helpers.ts';
import { countExit } from './x86-slice.ts';

const ctxOf = (hv: Hypervisor, caller: Domain): CallContext => ({
  hv,
  caller,
  vcpu: 0,
  conn: { handles: new Set(), ports: new Set(), foreign: [] },
  issueToken: () => 'token',
});

describe('per-domain counters', () => {
  it('counts a domain\'s own hypercalls and trap bounces; only a privileged caller reads them', () => {
    const { hv, dom0 } = makeHost();
    const d = makeGuest(hv);
    dispatch(ctxOf(hv, d), 'event_channel_op', 'alloc_unbound', { dom: DOMID_SELF, remote_dom: 0 });
    dispatch(ctxOf(hv, d), 'sched_op', 'yield', null);
    hv.bounceTrap(d.vcpus[0]!, { vector: 0x13, kind: 'int', frame: {} as never });
    const c = dispatch(ctxOf(hv, dom0), 'sysctl', 'xenlab_domain_counters', { domain: d.domid }) as DomainCounters;
    expect(c.alive).toBe(true);
    expect(c.counters).toMatchObject({ 'hypercall.event_channel_op.alloc_unbound': 1, 'hypercall.sched_op.yield': 1, 'trap.int13': 1 });
    expect(() => dispatch(ctxOf(hv, d), 'sysctl', 'xenlab_domain_counters', { domain: d.domid })).toThrow(/not privileged/);
  });

  it('a mark snapshots the counters with the marking process\'s own; a domain marks only itself', () => {
    const { hv, dom0 } = makeHost();
    const d = makeGuest(hv);
    const other = makeGuest(hv);
    dispatch(ctxOf(hv, d), 'domctl', 'xenlab_counters_mark', { domain: DOMID_SELF, label: 'BEGIN', extra: { 'blkfront.requests': 3 } });
    dispatch(ctxOf(hv, d), 'sched_op', 'yield', null);
    dispatch(ctxOf(hv, dom0), 'domctl', 'xenlab_counters_mark', { domain: d.domid, label: 'BENCH' });
    expect(() => dispatch(ctxOf(hv, d), 'domctl', 'xenlab_counters_mark', { domain: other.domid, label: 'x' })).toThrow(/not privileged/);
    expect(() => dispatch(ctxOf(hv, d), 'domctl', 'xenlab_counters_mark', { domain: DOMID_SELF, label: 'x', extra: { bad: -1 } })).toThrow(/non-negative/);
    expect(() => dispatch(ctxOf(hv, d), 'domctl', 'xenlab_counters_mark', { domain: DOMID_SELF, label: 'x'.repeat(33) })).toThrow(/at most 32/);
    const { marks } = dispatch(ctxOf(hv, dom0), 'sysctl', 'xenlab_domain_counters', { domain: d.domid }) as DomainCounters;
    expect(marks.map((m) => m.label)).toEqual(['BEGIN', 'BENCH']);
    expect(marks[0]!.extra).toEqual({ 'blkfront.requests': 3 });
    expect(marks[0]!.counters['hypercall.domctl.xenlab_counters_mark']).toBe(1);
    expect(marks[1]!.counters['hypercall.sched_op.yield']).toBe(1);
    expect(marks[1]!.t_ns).toBeGreaterThanOrEqual(marks[0]!.t_ns);
    for (let i = 0; i < 20; i++) hv.markCounters(d, `m${i}`, {});
    const after = dispatch(ctxOf(hv, dom0), 'sysctl', 'xenlab_domain_counters', { domain: d.domid }) as DomainCounters;
    expect(after.marks).toHaveLength(16);
    expect(after.marks.at(-1)!.label).toBe('m19');
  });

  it('a destroyed domain\'s final counters stay readable; an unknown domain is ESRCH', () => {
    const { hv, dom0 } = makeHost();
    const d = makeGuest(hv);
    hv.bounceTrap(d.vcpus[0]!, { vector: 0x10, kind: 'int', frame: {} as never });
    hv.markCounters(d, 'BENCH', { x: 1 });
    hv.destroyDomain(d);
    const c = dispatch(ctxOf(hv, dom0), 'sysctl', 'xenlab_domain_counters', { domain: d.domid }) as DomainCounters;
    expect(c.alive).toBe(false);
    expect(c.counters['trap.int10']).toBe(1);
    expect(c.marks.map((m) => m.label)).toEqual(['BENCH']);
    expect(() => dispatch(ctxOf(hv, dom0), 'sysctl', 'xenlab_domain_counters', { domain: 999 })).toThrow(/no domain 999/);
  });

  it('a mark waits for the domain\'s running worker slice, whose counts arrive at its end', async () => {
    const { hv, dom0 } = makeHost();
    const d = makeGuest(hv);
    hv.sliceStarted(d);
    const marked = dispatch(ctxOf(hv, dom0), 'domctl', 'xenlab_counters_mark', { domain: d.domid, label: 'BENCH' });
    expect(marked).toBeInstanceOf(Promise);
    d.countAll({ 'exits.total': 5 });
    hv.sliceEnded(d);
    await expect(marked).resolves.toBe(0);
    expect(d.counterMarks[0]!.counters['exits.total']).toBe(5);
    expect(hv.markCounters(d, 'again', {})).toBeUndefined();
  });

  it('countExit keys: totals, by reason, by port and by MMIO page', () => {
    const c: Record<string, number> = {};
    countExit(c, 'pio', 0x1f7);
    countExit(c, 'pio', 0x1f7);
    countExit(c, 'mmio', 0xb8123);
    countExit(c, 'hlt');
    expect(c).toEqual({ 'exits.total': 4, 'exits.io': 2, 'exit.pio:1f7': 2, 'exits.mmio': 1, 'exit.mmio:b8000': 1, 'exits.hlt': 1 });
  });
});
