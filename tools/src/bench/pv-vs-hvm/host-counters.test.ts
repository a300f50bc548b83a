/** The host backend's counter mapping: marks and dom0 samples → the in-process raw keys, missing never 0. */
import { describe, expect, it } from 'vitest';
import type { DomainCounters } from '@xenlab/xen-public';
import { explain } from './explain.ts';
import { delta, hostCounters, sumVbds } from './host-counters.ts';
import { createdDomid } from './host-backend.ts';

const hv = (marks: DomainCounters['marks']): DomainCounters => ({ domain: 5, alive: false, now_ns: 0, counters: {}, marks });
const mark = (label: string, t_ns: number, counters: Record<string, number>, extra: Record<string, number> = {}) => ({ label, t_ns, counters, extra });

describe('hostCounters', () => {
  it('PV: the differences between the BEGIN and BENCH marks, with blkback from dom0, under the in-process keys', () => {
    const r = hostCounters({
      path: 'pv',
      boot: false,
      hv: hv([
        mark('BEGIN', 1e6, { 'trap.int13': 2, 'hypercall.iret.iret': 2, 'hypercall.domctl.xenlab_counters_mark': 1, 'gnttab.copy.ops': 1, 'gnttab.copy.bytes': 4096, instructions: 100 }, { 'blkfront.requests': 1, 'blkfront.notificationsSent': 1, 'grant.granted': 4 }),
        mark('BENCH', 5e6, { 'trap.int13': 18, 'hypercall.iret.iret': 18, 'hypercall.domctl.xenlab_counters_mark': 2, 'gnttab.copy.ops': 9, 'gnttab.copy.bytes': 4096 * 9, instructions: 1100 }, { 'blkfront.requests': 33, 'blkfront.notificationsSent': 17, 'grant.granted': 20, 'console.notificationsSent': 3 }),
      ]),
      dom0Begin: { 'blkback.requests': 1, 'blkback.notificationsSent': 1, 'gntcopy.hypercalls': 1 },
      dom0End: { 'blkback.requests': 33, 'blkback.notificationsSent': 33, 'blkback.flushes': 0, 'gntcopy.hypercalls': 9 },
    });
    expect(r.missing).toEqual([]);
    expect(r.phaseMs).toBe(4);
    expect(r.instructions).toBe(1000);
    expect(r.counters).toMatchObject({ 'trap.int13': 16, 'blkfront.requests': 32, 'gntcopy.ops': 8, 'gntcopy.bytes': 8 * 4096, 'gntcopy.calls': 8, 'blkback.requests': 32 });
    // hypercalls: the domain's own (16 irets; the mark itself is not counted) + blkback's 8 grant copies
    expect(r.counters['host.hypercalls']).toBe(24);
    const e = explain('pv', r.counters, r.instructions);
    expect(e).toMatchObject({ trapBounces: 16, ringRequests: 32, hypercalls: 24, notifySent: 16 + 32 + 3, grantOps: 16 + 8, bytesCopied: 8 * 4096 });
  });

  it('PV without dom0\'s samples: the quantities blkback feeds are missing, the rest stay', () => {
    const r = hostCounters({ path: 'pv', boot: false, hv: hv([mark('BEGIN', 0, {}, { 'blkfront.requests': 0 }), mark('BENCH', 1, { 'trap.int13': 1 }, { 'blkfront.requests': 2 })]), dom0Begin: null, dom0End: { 'blkback.requests': 2 } });
    expect(r.missing).toEqual(['hypercalls', 'notifySent', 'notifySuppressed', 'flushes']);
    expect(r.counters['blkfront.requests']).toBe(2);
    expect(r.notes.join()).toMatch(/blkback/);
  });

  it('HVM: exits from the hypervisor, devices from qemu-dm\'s mark; boot counts from the domain\'s creation', () => {
    const r = hostCounters({
      path: 'hvm',
      boot: true,
      hv: hv([mark('BENCH', 9e6, { 'exits.total': 2800, 'exits.ioreq': 2790, 'exit.pio:1f7': 40, instructions: 5000 }, { 'ioreq.served': 2790, 'ata.commands': 2, 'ata.sectorsRead': 1, 'dev.ata0.exits': 20, 'dm.irqCalls': 4 })]),
      dom0Begin: {},
      dom0End: null,
    });
    expect(r.missing).toEqual([]);
    expect(Number.isNaN(r.phaseMs)).toBe(true);
    expect(explain('hvm', r.counters, r.instructions)).toMatchObject({ vmExits: 2800, ioreqs: 2790, ringRequests: 2, bytesCopied: 512, hypercalls: 4, notifySent: 5580, instructions: 5000 });
    expect(r.counters['exit.pio:1f7']).toBe(40);
  });

  it('no marks (or no counters at all): every quantity is missing, and the notes say why', () => {
    const none = hostCounters({ path: 'hvm', boot: false, hv: null, dom0Begin: null, dom0End: null });
    expect(none.missing).toHaveLength(11);
    expect(none.notes.join()).toMatch(/could not be read/);
    const noBegin = hostCounters({ path: 'pv', boot: false, hv: hv([mark('BENCH', 1, {})]), dom0Begin: {}, dom0End: {} });
    expect(noBegin.missing).toHaveLength(11);
    expect(noBegin.notes.join()).toMatch(/no BEGIN counter mark/);
  });

  it('the vCPU\'s CPU time between the marks: the pCPU threads\' CPU time, else their time in its slices', () => {
    const run = (begin: Record<string, number>, end: Record<string, number>) =>
      hostCounters({ path: 'hvm', boot: false, hv: hv([mark('BEGIN', 0, begin, { 'ioreq.served': 0 }), mark('BENCH', 9e6, end, { 'ioreq.served': 0 })]), dom0Begin: null, dom0End: null });
    const both = run({ 'pcpu.run_ns': 1e6, 'pcpu.cpu_ns': 1e6, 'pcpu.os_wait_ns': 0 }, { 'pcpu.run_ns': 9e6, 'pcpu.cpu_ns': 6e6, 'pcpu.os_wait_ns': 2e6, 'pcpu.slices': 3 });
    expect(both.vcpuMs).toBe(5);
    expect(both.counters).toMatchObject({ 'pcpu.run_ns': 8e6, 'pcpu.cpu_ns': 5e6, 'pcpu.os_wait_ns': 2e6, 'pcpu.slices': 3 });
    expect(run({ 'pcpu.run_ns': 1e6 }, { 'pcpu.run_ns': 4e6 }).vcpuMs).toBe(3);
    expect(Number.isNaN(run({}, {}).vcpuMs)).toBe(true);
  });

  it('createdDomid reads the domid from xl create --json', () => {
    expect(createdDomid('{"domid":7,"name":"x"}\n')).toBe(7);
    expect(createdDomid('Parsing config from x.cfg\n')).toBeUndefined();
    expect(createdDomid('')).toBeUndefined();
  });

  it('delta and sumVbds', () => {
    expect(delta({ a: 1 }, { a: 3, b: 2 })).toEqual({ a: 2, b: 2 });
    expect(sumVbds([{ counters: { x: 1 } }, { counters: { x: 2, y: 1 } }])).toEqual({ x: 3, y: 1 });
  });
});
