/**
 * The hypervisor process: `node hypervisor/src/main.ts --run-dir DIR [--memory MiB] [--pcpus N]
 * [--dom0-memory MiB] [--no-dom0]`. Thin wiring around the core: maps machine memory, builds
 * domain 0, serves hypercalls on the run directory's socket, drives the pCPUs, starts the dom0
 * process and stops everything on SIGTERM. `npx xenlab start` is the usual way to run it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { DOMID_SELF, hostLayout, defaultRunDir, processEntry } from '@xenlab/xen-public';
import { Doorbell, SharedMemory } from '@xenlab/ring-buffers';
import { EVTCHN_PAGE_DOORBELL_OFFSET } from './event-channel.ts';
import { HypercallServer } from './hypercall-server.ts';
import { Hypervisor } from './hypervisor.ts';
import { MachineMemory } from './mm/machine-memory.ts';
import { populatePhysmap } from './mm/memory.ts';
import { CreditScheduler } from './sched/credit.ts';
import { PcpuDriver } from './sched/pcpu.ts';
import { WorkerX86Runner } from './sched/pcpu-threads.ts';
import { X86Runner } from './x86-runner.ts';

interface Args {
  runDir: string;
  memoryMiB: number;
  pcpus: number;
  dom0MiB: number;
  dom0: boolean;
  /** Run guest vCPUs on one worker thread per pCPU (default) or on the main thread. */
  pcpuThreads: boolean;
}

function usage(msg: string): never {
  process.stderr.write(`hypervisor: ${msg}\nusage: hypervisor --run-dir DIR [--memory MiB] [--pcpus N] [--dom0-memory MiB] [--no-dom0] [--no-pcpu-threads]\n`);
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const a: Args = { runDir: defaultRunDir(), memoryMiB: 256, pcpus: availableParallelism(), dom0MiB: 0, dom0: true, pcpuThreads: true };
  const num = (v: string | undefined, what: string, min: number, max: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) usage(`${what} must be an integer in ${min}..${max}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (k === '--run-dir') a.runDir = argv[++i] ?? usage('--run-dir needs a path');
    else if (k === '--memory') a.memoryMiB = num(argv[++i], '--memory', 4, 65536);
    else if (k === '--pcpus') a.pcpus = num(argv[++i], '--pcpus', 1, 64);
    else if (k === '--dom0-memory') a.dom0MiB = num(argv[++i], '--dom0-memory', 1, 65536);
    else if (k === '--no-dom0') a.dom0 = false;
    else if (k === '--no-pcpu-threads') a.pcpuThreads = false;
    else usage(`unknown argument ${JSON.stringify(k)}`);
  }
  // Default: 64 MiB for dom0, less on a small host (a quarter of it), as xl's autoballoon leaves room.
  if (a.dom0MiB === 0) a.dom0MiB = Math.max(1, Math.min(64, Math.floor(a.memoryMiB / 4)));
  else if (a.dom0MiB * 2 > a.memoryMiB) usage(`--dom0-memory ${a.dom0MiB} must be at most half of --memory ${a.memoryMiB}`);
  return a;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const L = hostLayout(args.runDir);
  for (const d of [L.runDir, L.hypervisorDir, L.dom0Dir, L.xenstoredDir, L.logDir]) mkdirSync(d, { recursive: true });

  const shm = SharedMemory.create(L.machineMemory, args.memoryMiB << 20);
  const mem = new MachineMemory(shm.buffer);
  const credit = new CreditScheduler({ nrPcpus: args.pcpus });
  const doorbells = new Map<number, Doorbell>();
  const hv = new Hypervisor({
    memory: mem,
    nrPcpus: args.pcpus,
    sched: credit,
    onEventPending: (d, _vcpu, port) => {
      // The port's own doorbell (its binder's connection), else the domain's.
      const addr = port !== undefined ? hv.evtchn.bellOf(d, port) : mem.addr(d.evtchnPageMfn) + EVTCHN_PAGE_DOORBELL_OFFSET;
      let bell = doorbells.get(addr);
      if (!bell) doorbells.set(addr, (bell = new Doorbell(shm.buffer, addr)));
      bell.ring();
    },
  });

  // Domain 0: privileged, its vCPUs are the dom0 process (not run on pCPUs), its RAM populated.
  const dom0 = hv.createDomain({ domain: 0, max_vcpus: Math.min(args.pcpus, 32) }, { privileged: true });
  dom0.maxPages = args.dom0MiB * 256;
  for (const v of dom0.vcpus) {
    credit.remove(v);
    v.external = true;
    v.online = true;
    v.placeExternal(args.pcpus);
  }
  populatePhysmap(hv, dom0, { domid: DOMID_SELF, extent_start: Array.from({ length: dom0.maxPages }, (_, i) => i) });
  hv.unpauseDomain(dom0);

  // Device models answer ioreqs through shared memory and a doorbell: watch it for parked vCPUs.
  hv.ioreq.watchAnswers = true;
  // How long a pCPU spins, then sleeps, on an ioreq slot before handing the vCPU back blocked.
  const us = (name: string): number | undefined => (/^\d+$/.test(process.env[name] ?? '') ? Number(process.env[name]) : undefined);
  hv.ioreq.spinUs = us('XENLAB_IOREQ_SPIN_US') ?? hv.ioreq.spinUs;
  hv.ioreq.sleepUs = us('XENLAB_IOREQ_SLEEP_US') ?? hv.ioreq.sleepUs;
  const x86 = args.pcpuThreads ? new WorkerX86Runner(hv, L.machineMemory, args.pcpus) : new X86Runner(hv);
  const server = new HypercallServer(hv, { socketPath: L.hypervisorSocket, machineMemoryPath: L.machineMemory, credit, x86 });
  writeFileSync(L.dom0Token, server.issueToken(0) + '\n', { mode: 0o600 });
  await server.listen();
  const pcpus = new PcpuDriver(hv, credit, (d) => x86.runnerFor(d));
  pcpus.start();
  writeFileSync(L.hypervisorPid, `${process.pid}\n`);
  writeFileSync(L.hypervisorReady, `${new Date().toISOString()}\n`);
  hv.log(`hypercalls on ${L.hypervisorSocket}`);

  let dom0Proc: ChildProcess | undefined;
  let stopping = false;
  if (args.dom0) {
    const log = openSync(`${L.logDir}/dom0.log`, 'a');
    dom0Proc = spawn(process.execPath, [...processEntry('dom0'), '--run-dir', L.runDir], {
      stdio: ['ignore', log, log],
      env: { ...process.env, XENLAB_RUN_DIR: L.runDir },
    });
    closeSync(log);
    dom0Proc.on('exit', (code, sig) => {
      hv.log(`dom0 process exited (${sig ?? `code ${code}`})`);
      dom0Proc = undefined;
      // dom0 is the host's control plane (toolstack, backends, xenstored's parent): without it
      // nothing can be managed, and its helpers would be orphans. Stop the whole host.
      if (!stopping) void stop(`dom0's process died (${sig ?? `exit code ${code}`})`, 1);
    });
  }

  const stop = async (why: string, exitCode = 0): Promise<void> => {
    if (stopping) return;
    stopping = true;
    hv.log(`${why}: stopping`);
    if (exitCode !== 0) {
      process.stderr.write(`hypervisor: ${why}: stopping the host (xenstored, every guest's process, then the hypervisor); see ${L.logDir}/dom0.log\n`);
      writeFileSync(L.hypervisorStopped, `${new Date().toISOString()} ${why}: the host stopped\n`);
      await stopXenstored(L);
      for (const f of [L.dom0Ready, L.dom0Pid]) rmSync(f, { force: true });
    }
    if (dom0Proc) {
      const p = dom0Proc;
      const exited = new Promise<void>((r) => p.once('exit', () => r()));
      p.kill('SIGTERM');
      const t = setTimeout(() => p.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    pcpus.stop();
    await hv.ioreq.stopWatching();
    hv.platform.stopAll();
    if (x86 instanceof WorkerX86Runner) await x86.close();
    await server.close();
    for (const f of [L.hypervisorReady, L.hypervisorPid, L.dom0Token]) rmSync(f, { force: true });
    shm.close();
    rmSync(L.machineMemory, { force: true });
    process.exit(exitCode);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

/**
 * Stops the xenstored a dead dom0 left behind: the process in its pid file, only if its command
 * line names this host's xenstored socket (a recycled pid is left alone). Bounded: SIGTERM, then
 * SIGKILL after 3 s.
 */
async function stopXenstored(L: ReturnType<typeof hostLayout>): Promise<void> {
  let pid: number;
  try {
    pid = Number(readFileSync(L.xenstoredPid, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0 || !readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(L.xenstoredSocket)) return;
  } catch {
    return; // no pid file, or no such process
  }
  const alive = (): boolean => {
    try {
      process.kill(pid, 0);
      return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z'); // a zombie has exited
    } catch {
      return false;
    }
  };
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + 3000;
  while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  if (alive()) process.kill(pid, 'SIGKILL');
  rmSync(L.xenstoredPid, { force: true });
  rmSync(L.xenstoredSocket, { force: true });
}

main().catch((e) => {
  process.stderr.write(`hypervisor: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
