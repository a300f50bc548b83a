/**
 * How xl reaches the host: the run directory (XENLAB_RUN_DIR or the default), dom0's token, and
 * the hypercall socket — the way xl in a real dom0 reaches Xen through privcmd. Domain names
 * come from xenstore (`/local/domain/<id>/name`), as libxl reads them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { HypercallClient, defaultRunDir, hostLayout, type DomainInfo, type HostLayout } from '@xenlab/xen-public';
import { XenstoreClient } from '@xenlab/xenstore-client';

export class UserError extends Error {
  override name = 'UserError';
}

export interface Host {
  layout: HostLayout;
  /** The hypercall connection; connected in the background from `connectHost` on (a call waits for it). */
  hc: Pick<HypercallClient, 'call'>;
  close(): void;
}

export async function connectHost(tool: string, env: NodeJS.ProcessEnv = process.env): Promise<Host> {
  const layout = hostLayout(defaultRunDir(env));
  if (!existsSync(layout.hypervisorSocket) || !existsSync(layout.dom0Token)) {
    throw new UserError(
      `${tool}: no xenlab host is running in ${layout.runDir} (start one with \`npx xenlab start\`, or set XENLAB_RUN_DIR to the host's run directory)`,
    );
  }
  let token: string;
  try {
    token = readFileSync(layout.dom0Token, 'utf8').trim();
  } catch (e) {
    throw new UserError(`${tool}: cannot read ${layout.dom0Token}: ${(e as Error).message} (xl needs dom0's privileges)`);
  }
  // Connected in the background: a command that first talks to dom0's toolstack (xl create)
  // does not wait for it; the first hypercall does, and gets this error if it failed.
  const connecting = HypercallClient.connect(layout.hypervisorSocket, token, { timeoutMs: 10_000 }).catch((e: unknown) => {
    throw new UserError(`${tool}: cannot reach the hypervisor at ${layout.hypervisorSocket}: ${(e as Error).message} (is the host still running? try \`npx xenlab status\`)`);
  });
  connecting.catch(() => {}); // reported by the first call, if any
  const hc = { call: ((hypercall, cmd, arg) => connecting.then((c) => c.call(hypercall, cmd, arg))) as HypercallClient['call'] };
  return { layout, hc, close: () => void connecting.then((c) => c.close(), () => {}) };
}

/** All domains, in domid order (getdomaininfolist). */
export async function listDomains(host: Host): Promise<DomainInfo[]> {
  return host.hc.call('sysctl', 'getdomaininfolist', { first_domain: 0, max_domains: 0x7ff0 });
}

/** Names from xenstore; libxl prints "(null)" for a domain without one. */
export async function domainNames(host: Host, domids: number[]): Promise<Map<number, string>> {
  const names = new Map<number, string>();
  if (existsSync(host.layout.xenstoredSocket)) {
    let xs: XenstoreClient | undefined;
    try {
      xs = await XenstoreClient.connect(host.layout.xenstoredSocket);
      for (const id of domids) {
        const n = await xs.tryRead(`/local/domain/${id}/name`);
        if (n !== undefined) names.set(id, n);
      }
    } catch {
      // xenstored unreachable: fall back below
    } finally {
      xs?.close();
    }
  }
  for (const id of domids) if (!names.has(id)) names.set(id, id === 0 ? 'Domain-0' : '(null)');
  return names;
}

/** Resolves a domain argument (an id or a name) as xl does. */
export async function resolveDomain(host: Host, tool: string, arg: string | undefined): Promise<number> {
  if (arg === undefined) throw new UserError(`${tool}: a domain (name or id) is required`);
  const doms = await listDomains(host);
  if (/^\d+$/.test(arg)) {
    const id = Number(arg);
    if (!doms.some((d) => d.domain === id)) throw new UserError(`${tool}: domain ${id} does not exist (see \`xl list\`)`);
    return id;
  }
  const names = await domainNames(host, doms.map((d) => d.domain));
  const hit = [...names].filter(([, n]) => n === arg);
  if (hit.length === 0) throw new UserError(`${tool}: no domain named '${arg}' (see \`xl list\`)`);
  return hit[0]![0];
}

/** Parses a cpu list as xl does: "all", "none", "0-3,6". */
export function parseCpuList(tool: string, s: string, nrCpus: number): number[] {
  if (s === 'all') return Array.from({ length: nrCpus }, (_, i) => i);
  const out = new Set<number>();
  for (const part of s.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new UserError(`${tool}: invalid cpu list '${s}' (use e.g. all, 0-3,6)`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a || b >= nrCpus) throw new UserError(`${tool}: cpu range '${part}' is outside 0-${nrCpus - 1}`);
    for (let c = a; c <= b; c++) out.add(c);
  }
  return [...out].sort((x, y) => x - y);
}

/** Prints a cpu bitmap as xl's print_bitmap: "all", "none" or ranges. */
export function formatCpuMap(cpus: number[], nrCpus: number): string {
  const set = new Set(cpus.filter((c) => c < nrCpus));
  if (set.size === nrCpus) return 'all';
  if (set.size === 0) return 'none';
  const parts: string[] = [];
  for (let c = 0; c < nrCpus; c++) {
    if (!set.has(c)) continue;
    let e = c;
    while (set.has(e + 1)) e++;
    parts.push(e === c ? `${c}` : `${c}-${e}`);
    c = e;
  }
  return parts.join(',');
}
