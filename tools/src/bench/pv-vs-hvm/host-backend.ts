/**
 * The `host` backend: the same workloads as real domains on a booted xenlab host (hypervisor,
 * dom0, xenstored, one shim process per PV guest, one qemu-dm process per HVM guest), started
 * with `xl create`, so every trap, exit, ioreq and notification crosses real processes.
 *
 * Per run it writes an xl.cfg (PV: `type = "pv"`, the shim boots the disk's boot sector; HVM:
 * `type = "hvm"`, `boot = "c"`, COM1 as the console; the knobs the host can honour as
 * `xenlab_*` keys), `xl create`s it, follows the domain's console log for the `BEGIN` and
 * `BENCH` lines (polled every few ms), waits for the domain to be gone (`on_poweroff =
 * "destroy"`), destroying it on timeout, and then reads its counters (host-counters.ts): the
 * hypervisor's counter marks, which the shim / qemu-dm take at the edges of the phase while the
 * vCPU waits (exact, and they time the phase on the hypervisor's clock), and blkback's counters
 * from dom0 (read when the runner sees the lines; approximate on short phases). Boot is timed
 * from `xl create` to the BENCH line in the log.
 *
 * Knobs: `grant=map` boots a second host whose dom0 runs with XENLAB_BLKBACK_GRANTS=map (not
 * with --host-dir); `write-through` and `hvm-disk` go in the xl.cfg. Ring pages, notification
 * hold-off and the ioreq page have no switch on a host: `unsupported()` lists them with why.
 */
import { execFile } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { HypercallClient, hostLayout, type DomainCounters } from '@xenlab/xen-public';
import { ToolstackClient } from '../../xl/toolstack-client.ts';
import { failed, type Backend, type BackendJob } from './backend.ts';
import { hostCounters, sumVbds } from './host-counters.ts';
import { DEFAULT_SETTINGS, type Counters, type DriverSettings, type GuestPath, type GuestRunResult } from './protocol.ts';

const exec = promisify(execFile);
const BIN = fileURLToPath(new URL('../../../../node_modules/.bin/', import.meta.url));
const POLL_MS = 5;

export interface HostOptions {
  /** An already running host's run directory; without one, the session boots its own and stops it at the end. */
  runDir?: string;
  /** pCPUs of a host the session boots. */
  pcpus?: number;
}

/** dom0's environment a job's settings need (host-wide knobs); {} is the host's defaults. */
export function hostEnvFor(settings: DriverSettings): Record<string, string> {
  return settings.grantMode === 'map' ? { XENLAB_BLKBACK_GRANTS: 'map' } : {};
}

/** The xl.cfg lines of one benchmark guest, the guest-side knobs included. */
export function guestConfig(name: string, path: GuestPath, disk: string, settings: DriverSettings): string[] {
  return [
    `name = "${name}"`,
    `type = "${path}"`,
    'memory = 4',
    `disk = [ 'format=raw, vdev=${path === 'hvm' ? 'hda' : 'xvda'}, access=rw, target=${disk}' ]`,
    'on_poweroff = "destroy"',
    'on_crash = "destroy"',
    ...(path === 'hvm'
      ? ['boot = "c"', 'serial = "pty"', `xenlab_disk_mode = "${settings.hvmDiskMode}"`]
      : [`xenlab_write_through = ${settings.pvWriteThrough ? 1 : 0}`]),
  ];
}

/** One booted (or given) host, with privileged connections for reading counters. */
interface HostInstance {
  runDir: string;
  owned: boolean;
  ready: Promise<void>;
  hc?: HypercallClient;
  ts?: ToolstackClient;
}

/** The hosts shared by the PV and the HVM backend: one per set of host-wide knobs. */
export class HostSession {
  private readonly hosts = new Map<string, HostInstance>();
  private nextId = 1;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly o: HostOptions = {}) {}

  /** The run directory of the default host (null before it started). */
  get runDir(): string | null {
    return this.hosts.get('{}')?.runDir ?? null;
  }

  private envOf(h: HostInstance): NodeJS.ProcessEnv {
    return { ...process.env, XENLAB_RUN_DIR: h.runDir, XENSTORED_PATH: join(h.runDir, 'xenstored/socket') };
  }

  private async tool(h: HostInstance, name: string, args: string[], timeoutMs = 60_000, extraEnv: Record<string, string> = {}): Promise<string> {
    return (await exec(process.execPath, [join(BIN, name), ...args], { env: { ...this.envOf(h), ...extraEnv }, timeout: timeoutMs })).stdout;
  }

  /** The host for these dom0 settings, booted on first use (with --host-dir: the given one, whatever they are). */
  private host(env: Record<string, string>): HostInstance {
    const key = this.o.runDir ? '{}' : JSON.stringify(env);
    let h = this.hosts.get(key);
    if (h) return h;
    const owned = !this.o.runDir;
    const inst: HostInstance = { runDir: this.o.runDir ?? mkdtempSync(join(tmpdir(), 'xenlab-bench-host-')), owned, ready: Promise.resolve() };
    inst.ready = (async () => {
      if (!owned) {
        await this.tool(inst, 'xenlab', ['status']).catch((e: Error) => {
          throw new Error(`xenlab-bench: no running host in ${this.o.runDir} (${e.message.split('\n')[0]}); start one with 'XENLAB_RUN_DIR=${this.o.runDir} npx xenlab start', or leave out --host-dir to let the benchmark boot its own`);
        });
      } else {
        await this.tool(inst, 'xenlab', ['start', '--pcpus', String(this.o.pcpus ?? 2), '--memory', '64', '--dom0-memory', '16'], 120_000, env);
      }
      const L = hostLayout(inst.runDir);
      inst.hc = await HypercallClient.connect(L.hypervisorSocket, readFileSync(L.dom0Token, 'utf8').trim(), { timeoutMs: 10_000 });
      inst.ts = await ToolstackClient.connect(L, 'xenlab-bench', 10_000);
    })();
    this.hosts.set(key, (h = inst));
    return h;
  }

  /** Checks (or boots) the default host. */
  start(): Promise<void> {
    return this.host({}).ready;
  }

  /** Runs one guest; runs are one at a time, in order. */
  run(job: BackendJob): Promise<GuestRunResult> {
    const next = this.queue.then(() => this.runNow(job));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async runNow(job: BackendJob): Promise<GuestRunResult> {
    const id = this.nextId++;
    const h = this.host(hostEnvFor(job.settings));
    try {
      await h.ready;
    } catch (e) {
      return failed(id, job.path, (e as Error).message);
    }
    const name = `bench-${job.path}-${process.pid}-${id}`;
    const cfg = join(h.runDir, `${name}.cfg`);
    writeFileSync(cfg, guestConfig(name, job.path, job.disk, job.settings).join('\n') + '\n');
    const deadline = Date.now() + job.timeoutMs;
    const t0 = performance.now();
    try {
      // The domid from xl's answer: a short guest may be gone before a `domains` query could find it.
      const created = await this.tool(h, 'xl', ['create', '--json', cfg], Math.min(job.timeoutMs, 120_000));
      const domid = createdDomid(created) ?? (await h.ts!.call('xenlab-bench', 'domains', null)).find((d) => d.name === name)?.domid;
      const dom0Counters = async (): Promise<Counters | null> =>
        job.path !== 'pv' || domid === undefined ? null : h.ts!.call('xenlab-bench', 'device-counters', { domid }).then((r) => sumVbds(r.vbd), () => null);
      // PV: dom0's console backend logs the shim's console ring by name; HVM: qemu-dm logs COM1 by domid.
      const follow = new LogFollower(() => (job.path === 'pv' ? join(h.runDir, 'logs', 'console', `guest-${name}.log`) : domid === undefined ? null : join(h.runDir, 'logs', `console-d${domid}.log`)));
      let sameRead = false;
      let begin = null as number | null;
      let end = null as number | null;
      let bench = null as Record<string, string> | null;
      let dom0Begin: Counters | null = null;
      let dom0End: Counters | null = null;
      while (!bench && Date.now() < deadline) {
        let sawBegin = false;
        for (const line of follow.newLines()) {
          if (line.startsWith('BEGIN ') && begin === null) {
            begin = performance.now();
            sawBegin = true;
            dom0Begin = await dom0Counters();
          } else if (line.startsWith('BENCH ') && !bench) {
            end = performance.now();
            bench = fields(line);
            sameRead = sawBegin;
            dom0End = await dom0Counters();
          }
        }
        if (!bench) await new Promise((r) => setTimeout(r, POLL_MS));
      }
      const gone = await this.waitGone(h, name, Math.max(1000, Math.min(15_000, deadline - Date.now())));
      const totalMs = performance.now() - t0;
      const boot = bench?.name === 'boot';
      // dom0's window is the lines' arrival in the log: none when both came in one read.
      if (boot) dom0Begin = {};
      else if (sameRead) dom0Begin = null;
      const hv = domid === undefined ? null : await h.hc!.call('sysctl', 'xenlab_domain_counters', { domain: domid }).catch(() => null as DomainCounters | null);
      const hc = hostCounters({ path: job.path, boot, hv, dom0Begin, dom0End });
      // The phase on the hypervisor's clock between the marks; without them, from the console log.
      const logMs = boot ? (end !== null ? end - t0 : NaN) : begin !== null && end !== null ? end - begin : NaN;
      const byMarks = Number.isFinite(hc.phaseMs);
      let error: string | undefined;
      if (!bench) error = `no BENCH line within ${job.timeoutMs} ms`;
      else if (bench.error) error = `the guest reported INT 13h error ${bench.error}h`;
      else if (!boot && begin === null) error = 'the guest printed no BEGIN line before its BENCH line';
      else if (!gone) error = 'the domain did not go away after its BENCH line (destroyed)';
      else if (sameRead && !byMarks) error = `the phase was too short to time from the console log (BEGIN and BENCH arrived together; guest ticks ${bench.ticks ?? '?'}) and it has no counter marks (${hc.notes.join('; ') || 'no reason given'})`;
      return {
        id, path: job.path, ok: error === undefined, error, outcome: gone ? 'poweroff' : 'error', bench,
        phaseMs: byMarks ? hc.phaseMs : logMs, phaseCpuMs: hc.vcpuMs, phaseInstructions: hc.instructions, counters: hc.counters, missing: hc.missing,
        totalMs, totalInstructions: 0, consoleTail: follow.tail,
      };
    } catch (e) {
      await this.tool(h, 'xl', ['destroy', name]).catch(() => undefined);
      return failed(id, job.path, `xl create ${name}: ${(e as Error).message.split('\n').slice(0, 3).join(' ')}`);
    } finally {
      rmSync(cfg, { force: true });
    }
  }

  /** Polls `xl list` until the domain is gone; destroys it if it is still there at the bound. */
  private async waitGone(h: HostInstance, name: string, ms: number): Promise<boolean> {
    const until = Date.now() + ms;
    const listed = async () => (await h.ts!.call('xenlab-bench', 'domains', null)).some((d) => d.name === name);
    while (Date.now() < until) {
      if (!(await listed())) return true;
      await new Promise((r) => setTimeout(r, 20));
    }
    await this.tool(h, 'xl', ['destroy', name]).catch(() => undefined);
    return false;
  }

  async close(): Promise<void> {
    const hosts = [...this.hosts.values()];
    this.hosts.clear();
    for (const h of hosts) {
      await h.ready.catch(() => undefined);
      h.ts?.close();
      h.hc?.close();
      if (!h.owned) continue;
      try {
        await this.tool(h, 'xenlab', ['stop'], 60_000);
      } finally {
        rmSync(h.runDir, { recursive: true, force: true });
      }
    }
  }
}

/** Reads the lines a growing log file gains, from where it left off. */
class LogFollower {
  private offset = 0;
  private partial = '';
  private last: string[] = [];
  private path: string | null = null;
  /** `locate` names the file once it exists (null until then). */
  constructor(private readonly locate: () => string | null) {}

  get file(): string | null {
    return this.path;
  }

  newLines(): string[] {
    this.path ??= this.locate();
    if (!this.path || !existsSync(this.path)) return [];
    const fd = openSync(this.path, 'r');
    try {
      const buf = Buffer.alloc(64 * 1024);
      let text = '';
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, this.offset);
        if (n <= 0) break;
        this.offset += n;
        text += buf.toString('latin1', 0, n);
      }
      const parts = (this.partial + text).split('\n');
      this.partial = parts.pop() ?? '';
      const lines = parts.map((l) => l.replace(/\r$/, ''));
      this.last = [...this.last, ...lines].slice(-20);
      return lines;
    } finally {
      closeSync(fd);
    }
  }

  get tail(): string {
    return [...this.last, this.partial].join('\n').slice(-2000);
  }
}

/** The domid in `xl create --json`'s answer (its last line), if there is one. */
export function createdDomid(stdout: string): number | undefined {
  const last = stdout.trim().split('\n').pop() ?? '';
  try {
    const d = JSON.parse(last) as { domid?: unknown };
    return typeof d.domid === 'number' ? d.domid : undefined;
  } catch {
    return undefined;
  }
}

function fields(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of line.trim().split(/\s+/).slice(1)) {
    const eq = part.indexOf('=');
    if (eq > 0) out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

/**
 * Why a knob's value cannot be had on a host (undefined: it can). Ring size, hold-off and the
 * ioreq page have no switch on a host; `grant=map` needs a host booted for it.
 */
export function hostKnobProblem(k: keyof DriverSettings, settings: DriverSettings, givenHost: boolean): string | undefined {
  switch (k) {
    case 'ringPages':
      return settings.ringPages === 1 ? undefined : "blkback maps a one-page ring on a host (multi-page rings are not negotiated)";
    case 'notifyHoldoff':
      return settings.notifyHoldoff ? undefined : 'blkfront and blkback on a host always honour req_event/rsp_event';
    case 'ioreqPage':
      return settings.ioreqPage ? undefined : 'every exit on a host goes to qemu-dm through the ioreq page';
    case 'grantMode':
      return settings.grantMode === 'map' && givenHost ? "the host in --host-dir runs with its own dom0 settings (boot it with XENLAB_BLKBACK_GRANTS=map, or leave out --host-dir)" : undefined;
    default:
      return undefined;
  }
}

const KNOB_NAMES: Record<keyof DriverSettings, { path: GuestPath; cli: string }> = {
  ringPages: { path: 'pv', cli: 'ring-pages' },
  notifyHoldoff: { path: 'pv', cli: 'notify-holdoff' },
  grantMode: { path: 'pv', cli: 'grant' },
  pvWriteThrough: { path: 'pv', cli: 'write-through' },
  hvmDiskMode: { path: 'hvm', cli: 'hvm-disk' },
  ioreqPage: { path: 'hvm', cli: 'ioreq-page' },
};

export class HostBackend implements Backend {
  readonly mode = 'host' as const;
  readonly description: string;

  constructor(readonly path: GuestPath, private readonly session: HostSession) {
    this.description = path === 'pv'
      ? 'host PV: xl create on a booted xenlab host (hypervisor, dom0 blkback with persistent grants, one PV shim process); phase and counters between the counter marks the shim takes at BEGIN/BENCH, blkback counters from dom0 when the lines appear in the log'
      : 'host HVM: xl create on a booted xenlab host (hypervisor, one qemu-dm process, virtual BIOS); phase and counters between the counter marks qemu-dm takes at BEGIN/BENCH on COM1';
  }

  /** The knobs of this path whose value a host cannot give, each with why. */
  unsupported(settings: DriverSettings): string[] {
    return (Object.keys(KNOB_NAMES) as Array<keyof DriverSettings>)
      .filter((k) => KNOB_NAMES[k].path === this.path)
      .flatMap((k) => {
        const why = hostKnobProblem(k, settings, this.session.o.runDir !== undefined);
        return why ? [`${KNOB_NAMES[k].cli}=${String(settings[k])}${settings[k] === DEFAULT_SETTINGS[k] ? ' (default)' : ''} (${why})`] : [];
      });
  }

  start(): Promise<void> {
    return this.session.start();
  }

  run(job: BackendJob): Promise<GuestRunResult> {
    return this.session.run(job);
  }

  close(): Promise<void> {
    return this.session.close();
  }
}
