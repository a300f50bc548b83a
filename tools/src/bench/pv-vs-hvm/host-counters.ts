/**
 * The host backend's counters: what the processes of a real host recorded for one guest run,
 * turned into the raw keys the in-process harness uses (so explain.ts and the report need no
 * second vocabulary) plus the list of explanation quantities that could not be measured.
 *
 * Sources (docs/benchmarks.md, "Backends"):
 *   marks   the hypervisor's counter marks for the domain (sysctl xenlab_domain_counters, read
 *           after the domain went): the PV shim marks at its INT 10h of the workload's BEGIN
 *           line end and BENCH line start, qemu-dm at the same bytes on COM1, each while the
 *           guest's vCPU waits on that byte, with the marking process's own counters in `extra`
 *           (shim: trap/int13/blkfront/grant/console; qemu-dm: ioreq/dm/dev/ata). Exact.
 *   dom0    blkback's counters for the domain's vbds (toolstack `device-counters`), read when the
 *           runner saw the BEGIN and BENCH lines in the console log: the window is late by the
 *           console path's latency at both ends, so these are approximate on short phases.
 * A quantity whose inputs are missing is reported in `missing` (shown as missing, never as 0).
 */
import type { DomainCounters } from '@xenlab/xen-public';
import { EXPLAIN_KEYS, type ExplainKey } from './explain.ts';
import type { Counters, GuestPath } from './protocol.ts';

export interface HostSamples {
  path: GuestPath;
  /** The boot scenario: counted from the domain's creation (all counters 0) to the BENCH mark. */
  boot: boolean;
  /** The domain's counters and marks after it went, or null when they could not be read. */
  hv: DomainCounters | null;
  /** PV: blkback's counters (summed over the vbds) when BEGIN and BENCH were seen; null if not read. */
  dom0Begin: Counters | null;
  dom0End: Counters | null;
}

export interface HostCounterResult {
  counters: Counters;
  missing: ExplainKey[];
  /** Guest instructions between the marks (NaN without marks). */
  instructions: number;
  /** Host ms between the marks (hypervisor clock), NaN without them. */
  phaseMs: number;
  /**
   * CPU ms of the domain's vCPU between the marks: the pCPU worker threads' own CPU time over
   * its slices (`pcpu.cpu_ns`, Linux schedstat), else their wall time in them (`pcpu.run_ns`);
   * NaN without marks or without either counter.
   */
  vcpuMs: number;
  /** Why something is missing, for the run's notes. */
  notes: string[];
}

const MARK_HYPERCALL = 'hypercall.domctl.xenlab_counters_mark';

/** b - a for every key of b (a missing key in a counts as 0: counters start at 0). */
export function delta(a: Counters, b: Counters): Counters {
  const out: Counters = {};
  for (const [k, v] of Object.entries(b)) out[k] = v - (a[k] ?? 0);
  return out;
}

/** Sums blkback's per-vbd counters into one set. */
export function sumVbds(vbds: ReadonlyArray<{ counters: Counters }>): Counters {
  const out: Counters = {};
  for (const v of vbds) for (const [k, x] of Object.entries(v.counters)) out[k] = (out[k] ?? 0) + x;
  return out;
}

const pick = (c: Counters, prefix: string, out: Counters, as = prefix): void => {
  for (const [k, v] of Object.entries(c)) if (k.startsWith(`${prefix}.`)) out[`${as}.${k.slice(prefix.length + 1)}`] = v;
};

export function hostCounters(s: HostSamples): HostCounterResult {
  const notes: string[] = [];
  const marks = s.hv?.marks ?? [];
  const begin = s.boot ? { t_ns: NaN, counters: {}, extra: {} } : marks.find((m) => m.label === 'BEGIN');
  const end = marks.find((m) => m.label === 'BENCH' && (s.boot || m.t_ns >= (begin?.t_ns ?? Infinity)));
  if (!s.hv || !begin || !end) {
    notes.push(!s.hv ? "the hypervisor's counters for the domain could not be read" : `the domain has no ${begin ? 'BENCH' : 'BEGIN'} counter mark`);
    return { counters: {}, missing: [...EXPLAIN_KEYS], instructions: NaN, phaseMs: NaN, vcpuMs: NaN, notes };
  }
  const hv = delta(begin.counters, end.counters);
  const own = delta(begin.extra, end.extra);
  const c: Counters = {};
  const missing = new Set<ExplainKey>();
  const hvHypercalls = Object.entries(hv).reduce((a, [k, v]) => (k.startsWith('hypercall.') && k !== MARK_HYPERCALL ? a + v : a), 0);
  pick(hv, 'hypercall', c);
  pick(hv, 'pcpu', c);
  c['evtchn.delivered'] = hv['evtchn.delivered'] ?? 0;
  if (s.path === 'pv') {
    pick(hv, 'trap', c);
    for (const p of ['int13', 'blkfront', 'grant', 'console']) pick(own, p, c);
    if (!Object.keys(own).some((k) => k.startsWith('blkfront.'))) {
      notes.push("the shim's mark carried no blkfront counters");
      for (const k of ['ringRequests', 'notifySent', 'notifySuppressed', 'grantOps'] as const) missing.add(k);
    }
    c['gntcopy.ops'] = hv['gnttab.copy.ops'] ?? 0;
    c['gntcopy.bytes'] = hv['gnttab.copy.bytes'] ?? 0;
    c['gntmap.maps'] = hv['gnttab.map.ops'] ?? 0;
    c['gntmap.unmaps'] = hv['gnttab.unmap.ops'] ?? 0;
    if (s.dom0Begin && s.dom0End) {
      const d0 = delta(s.boot ? {} : s.dom0Begin, s.dom0End);
      pick(d0, 'blkback', c);
      pick(d0, 'persistent', c);
      c['gntcopy.calls'] = d0['gntcopy.hypercalls'] ?? 0;
      c['host.hypercalls'] = hvHypercalls + (d0['gntcopy.hypercalls'] ?? 0) + (d0['persistent.mapCalls'] ?? 0);
    } else {
      notes.push("blkback's counters could not be read from dom0");
      for (const k of ['notifySent', 'notifySuppressed', 'flushes', 'hypercalls'] as const) missing.add(k);
    }
  } else {
    pick(hv, 'exits', c);
    pick(hv, 'exit', c);
    c['ioreq.sent'] = hv['ioreq.sent'] ?? 0;
    for (const p of ['ioreq', 'dm', 'dev', 'ata']) pick(own, p, c);
    if (own['ioreq.served'] === undefined) {
      notes.push("qemu-dm's mark carried no device counters");
      for (const k of ['ringRequests', 'bytesCopied', 'hypercalls'] as const) missing.add(k);
    } else c['host.hypercalls'] = hvHypercalls + (own['dm.irqCalls'] ?? 0);
  }
  return {
    counters: c,
    missing: EXPLAIN_KEYS.filter((k) => missing.has(k)),
    instructions: hv.instructions ?? NaN,
    phaseMs: s.boot ? NaN : (end.t_ns - begin.t_ns) / 1e6,
    vcpuMs: (hv['pcpu.cpu_ns'] ?? hv['pcpu.run_ns'] ?? NaN) / 1e6,
    notes,
  };
}
