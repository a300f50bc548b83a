/**
 * What the end-to-end suites share: a host booted with `xenlab start` in its own temporary run
 * directory, the repository's CLIs run against it (`xl`, `xenstore-*` — the same commands a user
 * types), a dom0 hypercall connection for looking behind them, bounded polling, and the
 * "no event channel of dom0 still points at this domain" check. `stop()` always stops the host
 * and removes the directory, also after a failed start.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import { DOMID_SELF, EVTCHNSTAT, HypercallClient, hostLayout } from '@xenlab/xen-public';

const run = promisify(execFile);
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const binPath = (name: string): string => join(repoRoot, 'node_modules/.bin', name);

export interface TestHost {
  dir: string;
  /** XENLAB_RUN_DIR and XENSTORED_PATH point at this host; XENLAB_ON_CRASH is unset. */
  env: NodeJS.ProcessEnv;
  /** dom0's hypercall connection, for checks behind the CLIs. */
  hc: HypercallClient;
  /** Runs a repository CLI against this host; resolves with its stdout. */
  tool(name: string, ...args: string[]): Promise<string>;
  xl(...args: string[]): Promise<string>;
  /** The domid `xl list` shows for `name`, if any. */
  domidOf(name: string): Promise<number | undefined>;
  stop(): Promise<void>;
}

export async function startTestHost(prefix: string, startArgs: string[]): Promise<TestHost> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const env: NodeJS.ProcessEnv = { ...process.env, XENLAB_RUN_DIR: dir, XENSTORED_PATH: join(dir, 'xenstored/socket') };
  delete env.XENLAB_ON_CRASH;
  const tool = async (name: string, ...args: string[]) => (await run(process.execPath, [binPath(name), ...args], { env, timeout: 60_000 })).stdout;
  let hc: HypercallClient | undefined;
  const stop = async () => {
    hc?.close();
    try {
      await tool('xenlab', 'stop');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  try {
    await tool('xenlab', 'start', ...startArgs);
    const L = hostLayout(dir);
    hc = await HypercallClient.connect(L.hypervisorSocket, readFileSync(L.dom0Token, 'utf8').trim());
  } catch (e) {
    await stop().catch(() => {});
    throw e;
  }
  const xl = (...args: string[]) => tool('xl', ...args);
  const domidOf = async (name: string) => {
    const m = new RegExp(`^${name} +(\\d+) `, 'm').exec(await xl('list'));
    return m ? Number(m[1]) : undefined;
  };
  return { dir, env, hc, tool, xl, domidOf, stop };
}

/** Polls `probe` until it gives something other than undefined/false, at most `ms`. */
export async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined | false> | T | undefined | false, everyMs = 50): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** No event channel of dom0 (ports 1..63) is bound or reserved for `domid` any more. */
export async function expectNoDom0ChannelTo(hc: HypercallClient, domid: number): Promise<void> {
  for (let port = 1; port < 64; port++) {
    const s = await hc.call('event_channel_op', 'status', { dom: DOMID_SELF, port }).catch(() => undefined);
    if (s && (s.status === EVTCHNSTAT.interdomain || s.status === EVTCHNSTAT.unbound)) expect(s.dom, `dom0 port ${port}`).not.toBe(domid);
  }
}
