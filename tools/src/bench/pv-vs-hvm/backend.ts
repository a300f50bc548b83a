/**
 * Backends run one guest on one path and answer a `GuestRunResult`. The runner knows nothing
 * else about them, so the same scenarios, statistics and report work whether a guest ran in a
 * one-process harness or as a real domain on a booted host.
 *
 *   in-process  `InProcessBackend`: a child process running guests/src/bench-guest.ts, which
 *               wires the PV shim + blkfront/blkback (PV) or qemu-dm's test machine (HVM) around
 *               the x86 CPU in one process. Both paths share one warm child; jobs go one at a time.
 *   host        `HostBackend` (host-backend.ts): `xl create` on a booted xenlab host, the phase
 *               timed and counted between the counter marks the shim / qemu-dm take (host-counters.ts).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { DriverSettings, GuestPath, GuestRunResult } from './protocol.ts';

export type RunMode = 'in-process' | 'host';

/** One guest run a backend is asked for. */
export interface BackendJob {
  path: GuestPath;
  /** Disk image to boot (workload in LBA 0.., data area from LBA 64); the backend may write to it. */
  disk: string;
  settings: DriverSettings;
  /** Give up on the guest after this many instructions (in-process) or this long (host: see timeoutMs). */
  maxInstructions: number;
  /** Host-time bound on one run; the backend kills the guest and reports a failed run. */
  timeoutMs: number;
}

export interface Backend {
  readonly mode: RunMode;
  readonly path: GuestPath;
  /** One line for the report: what runs the guest. */
  readonly description: string;
  /** The settings this backend cannot honour (ignored with a note in the report). */
  unsupported(settings: DriverSettings): string[];
  /** Get ready (spawn a harness, check the host is up). */
  start(): Promise<void>;
  /** Run one guest to power-off. Never throws for a guest's failure: that is `ok: false`. */
  run(job: BackendJob): Promise<GuestRunResult>;
  close(): Promise<void>;
}

const HARNESS = fileURLToPath(new URL('../../../../guests/src/bench-guest.ts', import.meta.url));
const TSX = fileURLToPath(new URL('../../../../node_modules/tsx/dist/cli.mjs', import.meta.url));

/**
 * The guest harness in a child process, spoken to with one JSON line per job. The PV and the HVM
 * backend share one child, so both paths' guests run on the same CPU code in the same V8 isolate
 * (same JIT state, same scheduling): the CPU-bound scenario then compares like with like.
 */
export class HarnessChild {
  private child: ChildProcessWithoutNullStreams | null = null;
  private waiting: { id: number; resolve: (r: GuestRunResult) => void; reject: (e: Error) => void } | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private nextId = 1;
  private stderr = '';

  start(): void {
    if (this.child) return;
    const child = spawn(process.execPath, [TSX, HARNESS], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    child.stderr.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const w = this.waiting;
      if (!w) return;
      let r: GuestRunResult;
      try {
        r = JSON.parse(line) as GuestRunResult;
      } catch {
        return; // not a result line (a stray log line): ignore it
      }
      if (r.id !== w.id) return;
      this.waiting = null;
      w.resolve(r);
    });
    child.on('exit', (code, signal) => {
      if (this.child === child) this.child = null;
      const w = this.waiting;
      this.waiting = null;
      w?.reject(new Error(`the guest harness exited (${signal ?? `code ${code}`}) during a run: ${this.stderr.trim().split('\n').slice(-5).join(' | ')}`));
    });
  }

  /** Runs one job; jobs are served one at a time, in order. */
  run(job: BackendJob): Promise<GuestRunResult> {
    const next = this.queue.then(() => this.runNow(job));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async runNow(job: BackendJob): Promise<GuestRunResult> {
    this.start();
    const child = this.child!;
    const id = this.nextId++;
    let timer: NodeJS.Timeout | undefined;
    const answer = new Promise<GuestRunResult>((resolve, reject) => {
      this.waiting = { id, resolve, reject };
      timer = setTimeout(() => {
        // A guest that runs away is killed with its harness; the next run starts a fresh one.
        child.kill('SIGKILL');
        reject(new Error(`the ${job.path} run took longer than ${job.timeoutMs} ms`));
      }, job.timeoutMs);
    });
    child.stdin.write(JSON.stringify({ id, path: job.path, disk: job.disk, settings: job.settings, maxInstructions: job.maxInstructions }) + '\n');
    try {
      return await answer;
    } catch (e) {
      return failed(id, job.path, (e as Error).message);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = null;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.stdin.end();
    });
  }
}

/** One path (PV or HVM) of the in-process harness. */
export class InProcessBackend implements Backend {
  readonly mode = 'in-process' as const;
  readonly description: string;

  constructor(readonly path: GuestPath, private readonly harness: HarnessChild = new HarnessChild()) {
    this.description = path === 'pv'
      ? 'in-process PV: x86 CPU + shim BIOS services + blkfront/blkback over a shared ring (hypervisor ops are in-memory doubles)'
      : "in-process HVM: x86 CPU + virtual BIOS + qemu-dm's device models behind an ioreq slot (PIC/PIT stand-ins)";
  }

  unsupported(settings: DriverSettings): string[] {
    void settings;
    return [];
  }

  async start(): Promise<void> {
    this.harness.start();
  }

  run(job: BackendJob): Promise<GuestRunResult> {
    return this.harness.run(job);
  }

  close(): Promise<void> {
    return this.harness.close();
  }
}

export function failed(id: number, path: GuestPath, error: string): GuestRunResult {
  return { id, path, ok: false, error, outcome: 'error', bench: null, phaseMs: NaN, phaseCpuMs: NaN, phaseInstructions: 0, counters: {}, totalMs: 0, totalInstructions: 0, consoleTail: '' };
}
