/**
 * The PV domain builder (libxl's libxl__build_pv + libxc's xc_dom_* in role): populates the
 * guest's RAM, places the console and xenstore pages at the top of it and seeds grant refs 0 and
 * 1 with them (through a short-lived acquire_resource mapping of the guest's grant frame, as
 * libxl does), allocates their event channels in the guest for dom0, sets vCPU 0 to start at
 * 0000:7C00 with DL=80h, writes the start info and spawns the PV shim
 * (domU-pv-kernel-shim/src/main.ts), which loads the program and says `ready`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DomId, Gfn, GrantFrame, HypercallClient, XENMEM_resource, processEntry, type PvStartInfo, type ToolstackDomainConfig } from '@xenlab/xen-public';
import type { BuildContext, BuiltDomain, DomainBuilder } from './builder.ts';
import type { Dom0Host } from './dom0-host.ts';

const PAGE = 4096;
/** The program's conventional memory (INT 12h); the shim keeps frames from KERNEL_GFN up. */
const PROGRAM_KIB = 576;
const KERNEL_GFN = 0x100;
const SHIM_FRAMES = 24;
const READY_TIMEOUT_MS = 30_000;

/**
 * One shim process started ahead of time (node and the shim's modules loaded, waiting for its
 * start info on stdin), so `xl create` does not wait for a process start. The next one is
 * started only once the host has had SPARE_QUIET_MS without a PV create (and a while after dom0
 * starts): starting a node process takes a core for ~50 ms, and doing that during a create, or
 * during the new guest's first moments, would slow exactly what the spare is there to speed up.
 * A create that finds no spare starts its own shim, as before.
 */
const SPARE_QUIET_MS = 100;
const SPARE_AFTER_BOOT_MS = 1000;
let spare: ChildProcess | undefined;
let refill: NodeJS.Timeout | undefined;
let closed = false;
/** Where the spare connects and what it maps while it waits (the host's; the start info must agree). */
let hostPaths: string[] = [];
function spawnShim(): ChildProcess {
  const p = spawn(process.execPath, [...processEntry('pv-shim'), '--wait', ...hostPaths], { stdio: ['pipe', 'pipe', 'pipe'] });
  p.on('error', () => {});
  return p;
}
/** Started and not exited. */
const running = (p: ChildProcess | undefined): boolean => p !== undefined && p.exitCode === null && p.signalCode === null;
function scheduleSpare(delayMs: number): void {
  if (closed) return;
  if (refill) clearTimeout(refill);
  refill = setTimeout(() => {
    refill = undefined;
    if (!closed && !running(spare)) spare = spawnShim();
  }, delayMs);
  refill.unref();
}
function takeShim(): ChildProcess {
  const alive = running(spare) ? spare : undefined;
  spare = undefined;
  scheduleSpare(SPARE_QUIET_MS);
  return alive ?? spawnShim();
}
export function prepareShimPool(host?: Dom0Host): void {
  closed = false;
  hostPaths = host ? ['--hypervisor', host.layout.hypervisorSocket, '--machine-memory', host.hc.info.machine_memory] : [];
  scheduleSpare(SPARE_AFTER_BOOT_MS);
}
export function closeShimPool(): void {
  closed = true;
  if (refill) clearTimeout(refill);
  refill = undefined;
  spare?.kill('SIGKILL');
  spare = undefined;
}

export const pvBuilder: DomainBuilder = {
  type: 'pv',
  prepare: prepareShimPool,
  close: closeShimPool,
  async build(cfg: ToolstackDomainConfig, ctx: BuildContext): Promise<BuiltDomain> {
    const { hc, mm, layout } = ctx.host;
    const domid = ctx.domid;
    const nrPages = cfg.memory * 256;
    if (nrPages < 256) throw new Error(`memory = ${cfg.memory}: a PV guest needs at least 1 MiB`);
    if (cfg.kernel !== undefined && !existsSync(cfg.kernel)) throw new Error(`kernel '${cfg.kernel}' not found`);
    for (const d of cfg.disks) if (!existsSync(d.target)) throw new Error(`disk '${d.vdev}': file ${d.target} not found (from ${cfg.file})`);
    if (cfg.kernel === undefined && cfg.disks.length === 0) throw new Error('no kernel and no disk: nothing to boot (set kernel = "..." or give a disk with a boot sector)');

    const pop = await hc.call('memory_op', 'populate_physmap', { domid, extent_start: Array.from({ length: nrPages }, (_, i) => i) });
    if (pop.nr_done !== nrPages) throw new Error(`only ${pop.nr_done} of ${nrPages} pages could be populated (the host is out of memory; see \`xl info\`)`);
    const { mfns } = await hc.call('domctl', 'getmemlist', { domain: domid, max_pfns: nrPages });
    const consoleGfn = nrPages - 2;
    const storeGfn = nrPages - 1;
    const kernelGfn = nrPages >= KERNEL_GFN + SHIM_FRAMES + 2 ? KERNEL_GFN : 0x90;
    for (const g of [consoleGfn, storeGfn]) new Uint8Array(mm.buffer, mfns[g]! * PAGE, PAGE).fill(0);

    // Grant refs 0 (console) and 1 (xenstore) for dom0, written into the guest's grant frame.
    const seeder = await HypercallClient.connect(layout.hypervisorSocket, readFileSync(layout.dom0Token, 'utf8').trim());
    try {
      const { frame_list } = await seeder.call('memory_op', 'acquire_resource', { domid, type: XENMEM_resource.grant_table, id: 0, frame: 0, nr_frames: 1 });
      const gf = new GrantFrame(mm.buffer, frame_list[0]! * PAGE);
      gf.grant(0, DomId(0), Gfn(consoleGfn), false);
      gf.grant(1, DomId(0), Gfn(storeGfn), false);
    } finally {
      seeder.close(); // drops the foreign mapping of the grant frame
    }

    const consolePort = (await hc.call('event_channel_op', 'alloc_unbound', { dom: domid, remote_dom: 0 })).port;
    const storePort = (await hc.call('event_channel_op', 'alloc_unbound', { dom: domid, remote_dom: 0 })).port;
    await hc.call('domctl', 'setvcpucontext', { domain: domid, vcpu: 0, ctx: { cs: 0, ip: 0x7c00, ss: 0, sp: 0x7c00, ds: 0, es: 0, dx: 0x80, flags: 0x0202 } });

    const si: PvStartInfo = {
      domid,
      name: cfg.name,
      nr_pages: nrPages,
      mfn_list: mfns,
      store_gfn: storeGfn,
      store_evtchn: storePort,
      console_gfn: consoleGfn,
      console_evtchn: consolePort,
      kernel_gfn_start: kernelGfn,
      program_kib: PROGRAM_KIB,
      hypervisor_socket: layout.hypervisorSocket,
      // xl.cfg `xenlab_write_through = 0` (the benchmark's knob): INT 13h writes return before a flush.
      ...(cfg.extra?.xenlab_write_through !== undefined ? { write_through: !['0', 'false', 'off'].includes(String(cfg.extra.xenlab_write_through)) } : {}),
      ...(cfg.kernel !== undefined ? { kernel: cfg.kernel } : {}),
    };
    const siPath = join(ctx.dir, 'start-info.json');
    writeFileSync(siPath, JSON.stringify(si));

    const logPath = join(layout.logDir, `shim-${cfg.name}.${domid}.log`);
    let proc: ChildProcess | undefined;
    let exitListener: ((why: string) => void) | undefined;
    let stopping = false;
    // The shim gets its start info at once and sets up what needs only the hypervisor; the
    // second line ("go") says the xenstore tree is written and the domain introduced.
    const launch = (): void => {
      if (proc) return;
      proc = takeShim();
      proc.stderr!.pipe(createWriteStream(logPath, { flags: 'a' }));
      proc.stdin!.on('error', () => {}); // a shim that died is reported by 'exit'
      proc.stdin!.write(`${JSON.stringify({ startInfo: siPath, token: ctx.token })}\n`);
      writeFileSync(join(ctx.dir, 'shim.pid'), `${proc.pid}\n`);
      const p = proc;
      p.once('exit', (code, sig) => {
        if (!stopping) exitListener?.(`the PV shim (pid ${p.pid}) exited (${sig ?? `code ${code}`})`);
      });
    };
    return {
      store: { gfn: storeGfn, mfn: mfns[storeGfn]!, port: storePort },
      console: { gfn: consoleGfn, mfn: mfns[consoleGfn]!, port: consolePort },
      xenstore: { 'image/kernel': cfg.kernel ?? '(boot sector of the first disk)' },
      pids: () => (running(proc) && proc!.pid !== undefined ? [proc!.pid] : []),
      onExit: (l) => (exitListener = l),
      launch,
      async start() {
        launch();
        const p = proc!;
        p.stdin!.end('go\n');
        await new Promise<void>((resolve, reject) => {
          let buf = '';
          const t = setTimeout(() => reject(new Error(`the PV shim did not get ready within ${READY_TIMEOUT_MS / 1000} s (see ${logPath})`)), READY_TIMEOUT_MS);
          const onExit = (code: number | null, sig: string | null) => {
            clearTimeout(t);
            const tail = readFileSync(logPath, 'utf8').trimEnd().split('\n').slice(-3).join(' | ');
            reject(new Error(`the PV shim exited (${sig ?? `code ${code}`}) before it was ready: ${tail}`));
          };
          // It may have died already, between launch and now.
          if (!running(p)) return onExit(p.exitCode, p.signalCode);
          p.once('exit', onExit);
          p.stdout!.on('data', (b: Buffer) => {
            buf += b.toString();
            if (buf.includes('ready')) {
              clearTimeout(t);
              p.off('exit', onExit);
              resolve();
            }
          });
        });
      },
      freeze() {
        stopping = true;
        if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGSTOP');
      },
      async destroy() {
        stopping = true;
        const p = proc;
        if (!p || p.exitCode !== null || p.signalCode !== null) return;
        const exited = new Promise<void>((r) => p.once('exit', () => r()));
        p.kill('SIGKILL');
        await exited;
      },
    };
  },
};
