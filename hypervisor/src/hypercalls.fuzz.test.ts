/**
 * Bad input never crashes the hypervisor: random arguments to every hypercall and sub-op, from a
 * privileged and an unprivileged caller, must come back as a result or a Xen errno — never as
 * an internal error (which the server would report as EIO plus a console line).
 */
import { describe, expect, it } from 'vitest';
import { XenError } from '@xenlab/xen-public';
import { toXenError } from './errors.ts';
import { dispatch, hypercalls, type CallContext } from './hypercalls.ts';
import { CreditScheduler } from './sched/credit.ts';
import { makeGuest, makeHost } from './test-helpers.ts';
import { X86Runner } from './x86-runner.ts';

/** A small deterministic PRNG (mulberry32) so failures reproduce. */
function rng(seed: number): () => number {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KEYS = ['domid', 'dom', 'domain', 'port', 'remote_dom', 'remote_port', 'vcpu', 'virq', 'ref', 'flags', 'nr_frames', 'extent_start', 'extent_order', 'max_vcpus', 'max_memkb', 'weight', 'cap', 'sched_id', 'cmd', 'reason', 'handle', 'ctx', 'frame', 'index', 'value', 'text', 'count', 'vcpuid', 'timeout_ns', 'isa_irq', 'level', 'type', 'id', 'max_pfns', 'cpumap_hard', 'source', 'dest', 'len', 'offset', 'gmfn', 'first_domain', 'max_domains', 'cpupool_id', 'tslice_ms', 'ratelimit_us'];

function value(r: () => number, depth = 0): unknown {
  const k = Math.floor(r() * 12);
  switch (k) {
    case 0: return Math.floor(r() * 8);
    case 1: return Math.floor(r() * 0x10000);
    case 2: return -Math.floor(r() * 100);
    case 3: return r() * 1e20;
    case 4: return 0x7ff0;
    case 5: return 'x'.repeat(Math.floor(r() * 40));
    case 6: return null;
    case 7: return depth < 2 ? Array.from({ length: Math.floor(r() * 5) }, () => value(r, depth + 1)) : [];
    case 8: return depth < 2 ? struct(r, depth + 1) : {};
    case 9: return true;
    case 10: return NaN;
    default: return Math.floor(r() * 4096);
  }
}
function struct(r: () => number, depth = 0): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  const n = Math.floor(r() * 6);
  for (let i = 0; i < n; i++) o[KEYS[Math.floor(r() * KEYS.length)]!] = value(r, depth);
  return o;
}

describe('hypercall fuzz', () => {
  it('random arguments to every sub-op give results or Xen errnos, never internal errors', () => {
    const credit = new CreditScheduler({ nrPcpus: 2 });
    const { hv, dom0 } = makeHost(2048, { sched: credit, nrPcpus: 2 });
    const x86 = new X86Runner(hv);
    const guest = makeGuest(hv, { max_vcpus: 2 });
    const ops = Object.entries(hypercalls).flatMap(([h, t]) => Object.keys(t).map((c) => [h, c] as const));
    const r = rng(0x5eed);
    const internal: string[] = [];
    let ok = 0;
    let errs = 0;
    for (let i = 0; i < 6000; i++) {
      const [h, c] = ops[Math.floor(r() * ops.length)]!;
      const caller = r() < 0.5 ? dom0 : guest;
      if (caller.dying !== 'alive') continue;
      const arg = r() < 0.3 ? value(r) : r() < 0.5 ? Array.from({ length: Math.floor(r() * 4) }, () => struct(r)) : struct(r);
      const ctx: CallContext = { hv, caller, vcpu: 0, conn: { handles: new Set(), ports: new Set(), foreign: [] }, issueToken: () => 't', credit, x86 };
      try {
        dispatch(ctx, h, c, arg);
        ok++;
      } catch (e) {
        const m = toXenError(e);
        if (m.internal || !(e instanceof XenError)) internal.push(`${h}/${c}(${JSON.stringify(arg)}): ${m.message}`);
        errs++;
      }
    }
    expect(internal.slice(0, 5)).toEqual([]);
    expect(ok).toBeGreaterThan(100);
    expect(errs).toBeGreaterThan(1000);
    // the host still works
    expect(hv.getDomainInfo(0).domain).toBe(0);
  });
});
