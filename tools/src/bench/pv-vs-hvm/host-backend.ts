/**
 * The `host` backend: the same workloads as real domains on a booted xenlab host (hypervisor,
 * dom0, xenstored, one shim process per PV guest, one qemu-dm process per HVM guest), started
 * with `xl create`, so every trap, exit, ioreq and notification crosses real processes.
 *
 * What it does per run: writes an xl.cfg (PV: `type = "pv"`, the shim boots the disk's boot
 * sector; HVM: `type = "hvm"`, `boot = "c"`, COM1 as the console), `xl create`s it, follows the
 * domain's console log (dom0's console backend writes `logs/console/guest-NAME.log`) and
 * time-stamps the `BEGIN` and `BENCH` lines as they appear (polled every few ms, so the phase has
 * that resolution plus the console path's latency; boot is timed from `xl create`), then waits for
 * the domain to be gone (`on_poweroff = "destroy"`), destroying it on timeout.
 *
 * NOT YET: the counters. The host's per-domain counters (hypervisor exits by port, hypercalls,
 * event-channel sends, grant ops; blkback, blkfront and qemu-dm counters) are not exported where
 * a tool can read them between two instants; when they are, read them at the two marks and answer
 * their differences under the keys the in-process harness uses (`exits.*`, `exit.pio:*`,
 * `trap.*`, `blkfront.*`, `blkback.*`, `grant.*`, `gntcopy.*`, `evtchn.*`, `dev.*`, `ata.*`), and
 * the explanation and report need no change. Nor are the driver knobs passed to the host yet
 * (`unsupported()` lists them); the host's own defaults apply.
 */
import { execFile } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { failed, type Backend, type BackendJob } from './backend.ts';
import { DEFAULT_SETTINGS, type DriverSettings, type GuestPath, type GuestRunResult } from './protocol.ts';

const exec = promisify(execFile);
const BIN = fileURLToPath(new URL('../../../../node_modules/.bin/', import.meta.url));
const POLL_MS = 5;

export interface HostOptions {
  /** An already running host's run directory; without one, the session boots its own and stops it at the end. */
  runDir?: string;
  /** pCPUs of a host the session boots. */
  pcpus?: number;
}

/** One host shared by the PV and the HVM backend. */
export class HostSession {
  runDir: string | null = null;
  private owned = false;
  private started: Promise<void> | null = null;
  private nextId = 1;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly o: HostOptions = {}) {}

  get env(): NodeJS.ProcessEnv {
    const dir = this.runDir!;
    return { ...process.env, XENLAB_RUN_DIR: dir, XENSTORED_PATH: join(dir, 'xenstored/socket') };
  }

  async tool(name: string, args: string[], timeoutMs = 60_000): Promise<string> {
    return (await exec(process.execPath, [join(BIN, name), ...args], { env: this.env, timeout: timeoutMs })).stdout;
  }

  start(): Promise<void> {
    this.started ??= (async () => {
      if (this.o.runDir) {
        this.runDir = this.o.runDir;
        await this.tool('xenlab', ['status']).catch((e: Error) => {
          throw new Error(`xenlab-bench: no running host in ${this.o.runDir} (${e.message.split('\n')[0]}); start one with 'XENLAB_RUN_DIR=${this.o.runDir} npx xenlab start', or leave out --host-dir to let the benchmark boot its own`);
        });
      } else {
        this.runDir = mkdtempSync(join(tmpdir(), 'xenlab-bench-host-'));
        this.owned = true;
        await this.tool('xenlab', ['start', '--pcpus', String(this.o.pcpus ?? 2), '--memory', '64', '--dom0-memory', '16'], 120_000);
      }
    })();
    return this.started;
  }

  /** Runs one guest; runs are one at a time, in order. */
  run(job: BackendJob): Promise<GuestRunResult> {
    const next = this.queue.then(() => this.runNow(job));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async runNow(job: BackendJob): Promise<GuestRunResult> {
    await this.start();
    const id = this.nextId++;
    const name = `bench-${job.path}-${process.pid}-${id}`;
    const cfg = join(this.runDir!, `${name}.cfg`);
    const lines = [
      `name = "${name}"`,
      `type = "${job.path}"`,
      'memory = 4',
      `disk = [ 'format=raw, vdev=${job.path === 'hvm' ? 'hda' : 'xvda'}, access=rw, target=${job.disk}' ]`,
      'on_poweroff = "destroy"',
      'on_crash = "destroy"',
      ...(job.path === 'hvm' ? ['boot = "c"', 'serial = "pty"'] : []),
    ];
    writeFileSync(cfg, lines.join('\n') + '\n');
    const deadline = Date.now() + job.timeoutMs;
    const t0 = performance.now();
    try {
      await this.tool('xl', ['create', cfg], Math.min(job.timeoutMs, 120_000));
      // PV: dom0's console backend logs the shim's console ring by name. HVM: qemu-dm logs COM1
      // by domid; domids only grow, so the new domain's log is the highest one (the domain may
      // already be gone by the time `xl list` could name it).
      const follow = new LogFollower(() => (job.path === 'pv' ? join(this.runDir!, 'logs', 'console', `guest-${name}.log`) : this.newestHvmLog()));
      let sameRead = false;
      let begin = null as number | null;
      let end = null as number | null;
      let bench = null as Record<string, string> | null;
      while (!bench && Date.now() < deadline) {
        let sawBegin = false;
        for (const line of follow.newLines()) {
          if (line.startsWith('BEGIN ') && begin === null) {
            begin = performance.now();
            sawBegin = true;
          } else if (line.startsWith('BENCH ') && !bench) {
            end = performance.now();
            bench = fields(line);
            sameRead = sawBegin;
          }
        }
        if (!bench) await new Promise((r) => setTimeout(r, POLL_MS));
      }
      if (job.path === 'hvm') {
        const m = follow.file ? /console-d(\d+)\.log$/.exec(follow.file) : null;
        if (m) this.lastHvmDomid = Number(m[1]);
      }
      const gone = await this.waitGone(name, Math.max(1000, Math.min(15_000, deadline - Date.now())));
      const totalMs = performance.now() - t0;
      const from = bench?.name === 'boot' ? t0 : begin;
      let error: string | undefined;
      if (!bench) error = `no BENCH line within ${job.timeoutMs} ms`;
      else if (bench.error) error = `the guest reported INT 13h error ${bench.error}h`;
      else if (from === null) error = 'the guest printed no BEGIN line before its BENCH line';
      else if (!gone) error = 'the domain did not go away after its BENCH line (destroyed)';
      else if (sameRead) error = `the phase was too short to time from the console log (BEGIN and BENCH arrived together; guest ticks ${bench.ticks ?? '?'}): use the full profile on a host`;
      return {
        id, path: job.path, ok: error === undefined, error, outcome: gone ? 'poweroff' : 'error', bench,
        phaseMs: from !== null && end !== null ? end - from : NaN, phaseCpuMs: NaN, phaseInstructions: 0, counters: {},
        totalMs, totalInstructions: 0, consoleTail: follow.tail,
      };
    } catch (e) {
      await this.tool('xl', ['destroy', name]).catch(() => undefined);
      return failed(id, job.path, `xl create ${name}: ${(e as Error).message.split('\n').slice(0, 3).join(' ')}`);
    } finally {
      rmSync(cfg, { force: true });
    }
  }

  private lastHvmDomid = 0;

  /** The console log of the newest HVM domain not yet used, or null while it has none. */
  private newestHvmLog(): string | null {
    const dir = join(this.runDir!, 'logs');
    let best = 0;
    for (const f of readdirSync(dir)) {
      const m = /^console-d(\d+)\.log$/.exec(f);
      if (m && Number(m[1]) > best) best = Number(m[1]);
    }
    return best > this.lastHvmDomid ? join(dir, `console-d${best}.log`) : null;
  }

  /** Polls `xl list` until the domain is gone; destroys it if it is still there at the bound. */
  private async waitGone(name: string, ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    const listed = async () => new RegExp(`^${name} `, 'm').test(await this.tool('xl', ['list']));
    while (Date.now() < end) {
      if (!(await listed())) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    await this.tool('xl', ['destroy', name]).catch(() => undefined);
    return false;
  }

  async close(): Promise<void> {
    const started = this.started;
    this.started = null;
    if (!started || !this.owned) return;
    await started.catch(() => undefined);
    try {
      await this.tool('xenlab', ['stop'], 60_000);
    } finally {
      rmSync(this.runDir!, { recursive: true, force: true });
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

function fields(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of line.trim().split(/\s+/).slice(1)) {
    const eq = part.indexOf('=');
    if (eq > 0) out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
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
      ? 'host PV: xl create on a booted xenlab host (hypervisor, dom0 blkback, one PV shim process); phase timed from the console log; counters not collected yet'
      : 'host HVM: xl create on a booted xenlab host (hypervisor, one qemu-dm process, virtual BIOS); phase timed from the console log; counters not collected yet';
  }

  /** Every knob is the host's own default for now: none is passed through xl.cfg yet. */
  unsupported(settings: DriverSettings): string[] {
    return (Object.keys(KNOB_NAMES) as Array<keyof DriverSettings>)
      .filter((k) => KNOB_NAMES[k].path === this.path)
      .map((k) => `${KNOB_NAMES[k].cli}=${String(settings[k])}${settings[k] === DEFAULT_SETTINGS[k] ? ' (default)' : ''}`);
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
