/**
 * xl's output layouts (fact sheet §13, from tools/xl/*.c in Xen 4.17), as pure functions so
 * tests can pin them column by column.
 */
import { XEN_DOMINF, XEN_DOMINF_shutdownmask, XEN_DOMINF_shutdownshift, type DomainInfo } from '@xenlab/xen-public';

const pad = (s: string, w: number) => s.padEnd(w);
const rpad = (s: string | number, w: number) => String(s).padStart(w);

export const LIST_HEADER = `Name${' '.repeat(40)}ID   Mem VCPUs\tState\tTime(s)`;
const SHUTDOWN_LETTERS = '-rscwS';

export function stateString(flags: number): string {
  const f = (bit: number, c: string) => (flags & bit ? c : '-');
  const shutdown = (flags & XEN_DOMINF.shutdown) !== 0;
  const reason = (flags >>> XEN_DOMINF_shutdownshift) & XEN_DOMINF_shutdownmask;
  const r = shutdown ? (reason < SHUTDOWN_LETTERS.length ? SHUTDOWN_LETTERS[reason]! : '?') : '-';
  return f(XEN_DOMINF.running, 'r') + f(XEN_DOMINF.blocked, 'b') + f(XEN_DOMINF.paused, 'p') + f(XEN_DOMINF.shutdown, 's') + r + f(XEN_DOMINF.dying, 'd');
}

/** One `xl list` row: "%-40s %5d %5lu %5d     %c%c%c%c%c%c  %8.1f". */
export function listRow(name: string, d: DomainInfo): string {
  const memMiB = Math.floor(((d.tot_pages + d.outstanding_pages) * 4) / 1024);
  return `${pad(name, 40)} ${rpad(d.domain, 5)} ${rpad(memMiB, 5)} ${rpad(d.nr_online_vcpus, 5)}     ${stateString(d.flags)}  ${rpad((d.cpu_time / 1e9).toFixed(1), 8)}`;
}

export const VCPU_LIST_HEADER = `${pad('Name', 32)} ${rpad('ID', 5)} ${rpad('VCPU', 5)} ${rpad('CPU', 5)} ${rpad('State', 5)} ${rpad('Time(s)', 9)} Affinity (Hard / Soft)`;

export interface VcpuRow {
  name: string;
  domid: number;
  vcpu: number;
  online: boolean;
  running: boolean;
  blocked: boolean;
  cpu: number;
  timeNs: number;
  hard: string;
  soft: string;
}

/** One `xl vcpu-list` row, as print_vcpuinfo. */
export function vcpuRow(r: VcpuRow): string {
  const head = `${pad(r.name, 32)} ${rpad(r.domid, 5)} ${rpad(r.vcpu, 5)}`;
  const cpuState = r.online ? `${rpad(r.cpu, 5)} ${rpad(r.running ? 'r' : '-', 3)}${r.blocked ? 'b' : '-'}- ` : `${rpad('-', 5)} ${rpad('-', 3)}-p `;
  return `${head}${cpuState}${rpad((r.timeNs / 1e9).toFixed(1), 9)}  ${r.hard} / ${r.soft}`;
}

/** `xl info` lines: "%-23s: %s" (virt_caps carries its own leading spaces). */
export function infoLines(pairs: [string, string][]): string {
  return pairs.map(([k, v]) => (k === 'virt_caps' ? `${pad(k, 23)}:${v}` : `${pad(k, 23)}: ${v}`)).join('\n');
}

export function schedCreditPool(tsliceMs: number, ratelimitUs: number, migrDelayUs: number): string {
  return `Cpupool Pool-0: tslice=${tsliceMs}ms ratelimit=${ratelimitUs}us migration-delay=${migrDelayUs}us`;
}
export const SCHED_CREDIT_HEADER = `${pad('Name', 33)} ${rpad('ID', 4)} ${rpad('Weight', 6)} ${rpad('Cap', 4)}`;
export function schedCreditRow(name: string, domid: number, weight: number, cap: number): string {
  return `${pad(name, 33)} ${rpad(domid, 4)} ${rpad(weight, 6)} ${rpad(cap, 4)}`;
}
