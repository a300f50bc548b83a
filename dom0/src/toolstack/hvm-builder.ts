/**
 * The HVM domain builder and its device model's lifecycle (libxl's `libxl__build_hvm` plus
 * `libxl__spawn_local_dm` / `libxl__destroy_device_model`; xc_dom_hvm in libxc). For an xl.cfg
 * with `type = "hvm"` it:
 *   1. creates the domain (XEN_DOMCTL_CDF_hvm), paused, and gives it RAM where a PC has RAM:
 *      0-9FFFFh (640 KiB), F0000-FFFFFh (the BIOS's 64 KiB) and the rest of `memory` from 1 MiB
 *      up. A0000-EFFFFh is left a hole, so VGA text memory at B8000h is MMIO served by qemu-dm;
 *   2. gives it an ioreq page (HVM_PARAM_IOREQ_PFN, at gfn FEFF0h, above anything the guest can
 *      address) and names dom0 as its device model (HVM_PARAM_DM_DOMAIN) — the hypervisor then
 *      offers one event channel per vCPU and writes it into the slot's `vp_eport`;
 *   3. sets vCPU 0 at the reset vector F000:FFF0 (the BIOS's, loaded by qemu-dm);
 *   4. writes the domain's xenstore nodes and starts one qemu-dm process
 *      (`qemu-dm/src/main.ts`) with the config's disk, serial and boot order;
 *   5. waits (bounded) for `/local/domain/0/device-model/<domid>/state = running`, then unpauses.
 * Destroying an HVM domain destroys the domain, stops its qemu-dm (SIGTERM, then SIGKILL) and
 * removes its xenstore nodes and files. If qemu-dm dies on its own, the hypervisor crashes the
 * guest (its ioreq channel closed); dom0's on_crash handling and `destroyHvmDomain` still apply.
 *
 * Two entry points: `hvmBuilder`, the `DomainBuilder` the toolstack service dispatches to for
 * `type = "hvm"` (builder.ts; the service does createdomain, xenstore, console and teardown), and
 * `createHvmDomain` / `destroyHvmDomain`, the same steps on their own over a hypercall and a
 * xenstore connection (for tests that exercise the HVM path below the service).
 *
 * This module never imports qemu-dm (a process never imports another process): it starts it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DomId, Gfn, GrantFrame, HVM_PARAM, HypercallClient, XENMEM_resource, XEN_DOMCTL_CDF, hostLayout, processEntry, type ToolstackDomainConfig } from '@xenlab/xen-public';
import type { XenstoreClient } from '@xenlab/xenstore-client';
import type { BuildContext, BuiltDomain, DomainBuilder } from './builder.ts';

/** What the HVM builder needs from a parsed xl.cfg (tools/src/xl-cfg's XlConfig has all of it). */
export interface HvmGuestConfig {
  name: string;
  /** `memory`, MiB. */
  memoryMiB: number;
  vcpus: number;
  /** The first disk is the primary master (hda / xvda); others are not emulated yet. */
  disks: readonly { path: string; readOnly: boolean; vdev?: string }[];
  /** xl.cfg `boot` (default "c"). */
  boot?: string;
  /** xl.cfg `serial` (["pty"] connects COM1 to the console). */
  serial?: readonly string[];
  /** xenlab: how the BIOS drives the disk (CMOS 70h), default pio. */
  diskMode?: 'pio' | 'pio-multiple' | 'dma';
}

export interface HvmBuilderEnv {
  hc: HypercallClient;
  xs: XenstoreClient;
  runDir: string;
  log?: (line: string) => void;
  /** Bound on waiting for qemu-dm's `running` (default 20 s). */
  dmTimeoutMs?: number;
}

export const HVM_IOREQ_GFN = 0xfeff0;
/** The PV console and xenstore pages every Xen HVM guest also has (grant refs 0 and 1), beside the ioreq page. */
export const HVM_CONSOLE_GFN = 0xfeff1;
export const HVM_STORE_GFN = 0xfeff2;
export const HVM_RESET_CS = 0xf000;
export const HVM_RESET_IP = 0xfff0;
const LOW_RAM_FRAMES = 0xa0; // 0-9FFFFh
const BIOS_FIRST_GFN = 0xf0; // F0000h-FFFFFh

export const hvmPaths = (runDir: string, domid: number) => {
  const L = hostLayout(runDir);
  return {
    dmDir: join(runDir, 'qemu-dm', String(domid)),
    dmPid: join(runDir, 'qemu-dm', String(domid), 'pid'),
    dmLog: join(L.logDir, `qemu-dm-d${domid}.log`),
    dmState: `/local/domain/0/device-model/${domid}`,
    /** qemu-dm's COM1: the socket `xl console` attaches to, and the log from the first byte. */
    serialSocket: join(runDir, 'qemu-dm', String(domid), 'serial'),
    consoleLog: join(L.logDir, `console-d${domid}.log`),
  };
};

/** Spawn qemu-dm for `domid` and wait (bounded) until it reports `running` in xenstore. */
async function startQemuDm(env: HvmBuilderEnv, domid: number, cfg: HvmGuestConfig): Promise<ChildProcess> {
  const p = hvmPaths(env.runDir, domid);
  const serial = cfg.serial?.[0] ?? 'none';
  const disk = cfg.disks[0];
  mkdirSync(p.dmDir, { recursive: true });
  mkdirSync(hostLayout(env.runDir).logDir, { recursive: true });
  const args = [...processEntry('qemu-dm'), '--run-dir', env.runDir, '--domid', String(domid), '--serial', serial, '--boot', cfg.boot ?? 'c'];
  if (disk) args.push('--disk', `${disk.path}${disk.readOnly ? ',ro' : ''}`);
  if (cfg.diskMode) args.push('--disk-mode', cfg.diskMode);
  const out = openSync(p.dmLog, 'a');
  const child = spawn(process.execPath, args, { stdio: ['ignore', out, out] });
  closeSync(out);
  const exited = new Promise<string>((res) => child.once('exit', (code, sig) => res(sig ?? `code ${code}`)));
  try {
    await env.xs.write(`/local/domain/${domid}/image/device-model-pid`, String(child.pid));
    await waitRunning(env.xs, p.dmState, env.dmTimeoutMs ?? 20_000, exited, p.dmLog);
  } catch (e) {
    await stopQemuDm(env, domid, child);
    throw e;
  }
  return child;
}

/** SIGTERM (and SIGCONT, in case it was frozen), SIGKILL after 5 s; then its node and files go. */
async function stopQemuDm(env: HvmBuilderEnv, domid: number, child?: ChildProcess): Promise<void> {
  const p = hvmPaths(env.runDir, domid);
  let pid = child?.pid;
  if (pid === undefined && existsSync(p.dmPid)) pid = Number(readFileSync(p.dmPid, 'utf8').trim()) || undefined;
  if (pid !== undefined && (child ? child.exitCode === null && child.signalCode === null : pidAlive(pid))) {
    const gone = child
      ? new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())))
      : (async () => {
          while (pidAlive(pid!)) await new Promise((r) => setTimeout(r, 20));
        })();
    const signal = (sig: NodeJS.Signals) => {
      try {
        process.kill(pid!, sig);
      } catch {
        // already gone
      }
    };
    signal('SIGTERM');
    signal('SIGCONT');
    const t = setTimeout(() => signal('SIGKILL'), 5000);
    await gone;
    clearTimeout(t);
  }
  await env.xs.rm(p.dmState).catch(() => {});
  rmSync(p.dmDir, { recursive: true, force: true });
}

export interface HvmDomain {
  domid: number;
  qemuDm: ChildProcess;
}

/**
 * The gfns of an HVM guest's RAM: conventional memory, the BIOS area, and `memory` above 1 MiB
 * (the 80186 cannot reach it, but the BIOS reports it as extended memory, as a PC's would).
 * The A0000-EFFFFh hole is the price of the PC layout: `memory` MiB less 320 KiB are populated.
 */
export function hvmRamGfns(memoryMiB = 1): number[] {
  const g: number[] = [];
  for (let i = 0; i < LOW_RAM_FRAMES; i++) g.push(i);
  for (let i = BIOS_FIRST_GFN; i < 0x100; i++) g.push(i);
  for (let i = 0x100; i < memoryMiB * 256; i++) g.push(i);
  return g;
}

/** Build, start qemu-dm, wait for it, unpause (unless `paused`). Cleans up after itself on failure. */
export async function createHvmDomain(env: HvmBuilderEnv, cfg: HvmGuestConfig, opts: { paused?: boolean } = {}): Promise<HvmDomain> {
  const { hc, xs } = env;
  const log = env.log ?? (() => {});
  try {
    checkConfig(cfg, log);
  } catch (e) {
    throw new Error(`xl create: ${(e as Error).message}`);
  }
  const { domain } = await hc.call('domctl', 'createdomain', { max_vcpus: Math.max(1, cfg.vcpus), flags: XEN_DOMCTL_CDF.hvm });
  let child: ChildProcess | undefined;
  try {
    await hc.call('domctl', 'max_mem', { domain, max_memkb: Math.max(cfg.memoryMiB * 1024, (hvmRamGfns(cfg.memoryMiB).length + 3) * 4) });
    await buildMemory(hc, domain, cfg.memoryMiB);
    const dom = `/local/domain/${domain}`;
    await xs.write(`${dom}/name`, cfg.name);
    await xs.write(`${dom}/domid`, String(domain));
    await xs.write(`${dom}/memory/static-max`, String(cfg.memoryMiB * 1024));
    await xs.write(`${dom}/memory/target`, String(cfg.memoryMiB * 1024));
    await xs.write(`${dom}/hvmloader/bios`, 'xenlab');
    await xs.write(`/libxl/${domain}/type`, 'hvm');
    child = await startQemuDm(env, domain, cfg);
    const c = child;
    c.on('exit', (code, sig) => log(`hvm: d${domain}: qemu-dm exited (${sig ?? `code ${code}`})`));
    if (!opts.paused) await hc.call('domctl', 'unpausedomain', { domain });
    log(`hvm: d${domain} (${cfg.name}) running, qemu-dm pid ${child.pid}`);
    return { domid: domain, qemuDm: child };
  } catch (e) {
    await destroyHvmDomain(env, domain, child).catch(() => {});
    throw e;
  }
}

async function waitRunning(xs: XenstoreClient, dmState: string, ms: number, exited: Promise<string>, logPath: string): Promise<void> {
  const w = await xs.watch(`${dmState}/state`);
  const deadline = Date.now() + ms;
  let died: string | undefined;
  void exited.then((why) => {
    died = why;
    w.end();
  });
  try {
    for (;;) {
      if ((await xs.tryRead(`${dmState}/state`)) === 'running') return;
      if (died !== undefined) throw new Error(`qemu-dm exited (${died}) before it was ready; see ${logPath}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`qemu-dm did not report running within ${ms} ms; see ${logPath}`);
      await w.next(left).catch(() => undefined);
    }
  } finally {
    await w.close().catch(() => {});
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Destroy an HVM domain and everything the builder made for it. Works with or without the
 * ChildProcess (a restarted toolstack finds qemu-dm through its pid file). Idempotent.
 */
export async function destroyHvmDomain(env: HvmBuilderEnv, domid: number, child?: ChildProcess): Promise<void> {
  await env.hc.call('domctl', 'destroydomain', { domain: domid }).catch(() => {});
  await stopQemuDm(env, domid, child);
  for (const path of [`/local/domain/${domid}`, `/libxl/${domid}`]) await env.xs.rm(path).catch(() => {});
}

/** xl.cfg → what this builder needs (boot and serial come through `extra`, verbatim from the file). */
export function hvmGuestConfig(cfg: ToolstackDomainConfig): HvmGuestConfig {
  const extra = cfg.extra ?? {};
  const serial = Array.isArray(extra.serial) ? extra.serial.map(String) : typeof extra.serial === 'string' ? [extra.serial] : [];
  const mode = extra.xenlab_disk_mode;
  return {
    name: cfg.name,
    memoryMiB: cfg.memory,
    vcpus: cfg.vcpus,
    disks: cfg.disks.filter((d) => d.devtype === 'disk').map((d) => ({ path: d.target, readOnly: d.access === 'ro', vdev: d.vdev })),
    boot: typeof extra.boot === 'string' ? extra.boot : undefined,
    serial,
    ...(mode === 'pio' || mode === 'pio-multiple' || mode === 'dma' ? { diskMode: mode } : {}),
  };
}

/** Checks what this builder can run before anything is built. */
function checkConfig(cfg: HvmGuestConfig, log: (l: string) => void): void {
  const serial = cfg.serial?.[0] ?? 'none';
  if (serial !== 'pty' && serial !== 'none') throw new Error(`serial '${serial}' is not supported for HVM guests (use serial = "pty")`);
  const boot = cfg.boot ?? 'c';
  if (!boot.includes('c')) throw new Error(`boot = "${boot}": only disk boot ("c") is emulated`);
  const disk = cfg.disks[0];
  if (disk && !existsSync(disk.path)) throw new Error(`disk '${disk.vdev ?? 'hda'}': file ${disk.path} not found`);
  if (cfg.disks.length > 1) log(`hvm: only the first disk is emulated (IDE primary master); ${cfg.disks.length - 1} more ignored`);
}

/** RAM, ioreq page, HVM params and the reset vector for an existing (paused) HVM domain. */
async function buildMemory(hc: HypercallClient, domid: number, memoryMiB: number, extraGfns: number[] = []): Promise<{ gfns: number[]; mfns: number[] }> {
  if (!(memoryMiB >= 1)) throw new Error(`memory = ${memoryMiB}: an HVM guest needs at least 1 MiB`);
  const want = [...hvmRamGfns(memoryMiB), HVM_IOREQ_GFN, ...extraGfns];
  const r = await hc.call('memory_op', 'populate_physmap', { domid, extent_start: want });
  if (r.nr_done !== want.length) throw new Error(`only ${r.nr_done} of ${want.length} pages could be populated (the host is out of memory; see \`xl info\`)`);
  await hc.call('hvm_op', 'set_param', { domid, index: HVM_PARAM.DM_DOMAIN, value: 0 });
  await hc.call('hvm_op', 'set_param', { domid, index: HVM_PARAM.IOREQ_PFN, value: HVM_IOREQ_GFN });
  await hc.call('domctl', 'setvcpucontext', { domain: domid, vcpu: 0, ctx: { cs: HVM_RESET_CS, ip: HVM_RESET_IP, flags: 0x0002 } });
  return hc.call('domctl', 'getmemlist', { domain: domid, max_pfns: 1 << 20 });
}

/**
 * The toolstack service's builder for `type = "hvm"` (builder.ts). The service has created the
 * domain (with XEN_DOMCTL_CDF_hvm) and set max_mem; this gives it RAM, the ioreq page, the PV
 * console and xenstore pages (grant refs 0/1, as for every Xen HVM guest), and starts qemu-dm in
 * `start()`. The guest's console is COM1, served by qemu-dm: `consoleSocket` / `consoleLog` name
 * it, so `xl console` attaches there.
 */
export const hvmBuilder: DomainBuilder = {
  type: 'hvm',
  async build(cfg: ToolstackDomainConfig, ctx: BuildContext): Promise<BuiltDomain> {
    const { hc, mm, layout, xs, log } = ctx.host;
    const domid = ctx.domid;
    const g = hvmGuestConfig(cfg);
    checkConfig(g, log);
    const { gfns, mfns } = await buildMemory(hc, domid, cfg.memory, [HVM_CONSOLE_GFN, HVM_STORE_GFN]);
    const mfnOf = (gfn: number) => mfns[gfns.indexOf(gfn)]!;
    for (const gfn of [HVM_CONSOLE_GFN, HVM_STORE_GFN]) new Uint8Array(mm.buffer, mfnOf(gfn) * 4096, 4096).fill(0);
    // Grant refs 0 (console) and 1 (xenstore) for dom0, as the PV builder seeds them (libxl does for HVM too).
    const seeder = await HypercallClient.connect(layout.hypervisorSocket, readFileSync(layout.dom0Token, 'utf8').trim());
    try {
      const { frame_list } = await seeder.call('memory_op', 'acquire_resource', { domid, type: XENMEM_resource.grant_table, id: 0, frame: 0, nr_frames: 1 });
      const gf = new GrantFrame(mm.buffer, frame_list[0]! * 4096);
      gf.grant(0, DomId(0), Gfn(HVM_CONSOLE_GFN), false);
      gf.grant(1, DomId(0), Gfn(HVM_STORE_GFN), false);
    } finally {
      seeder.close();
    }
    const consolePort = (await hc.call('event_channel_op', 'alloc_unbound', { dom: domid, remote_dom: 0 })).port;
    const storePort = (await hc.call('event_channel_op', 'alloc_unbound', { dom: domid, remote_dom: 0 })).port;
    for (const [index, value] of [[HVM_PARAM.STORE_PFN, HVM_STORE_GFN], [HVM_PARAM.STORE_EVTCHN, storePort], [HVM_PARAM.CONSOLE_PFN, HVM_CONSOLE_GFN], [HVM_PARAM.CONSOLE_EVTCHN, consolePort]] as const) {
      await hc.call('hvm_op', 'set_param', { domid, index, value });
    }
    const env: HvmBuilderEnv = { hc, xs, runDir: layout.runDir, log };
    const p = hvmPaths(layout.runDir, domid);
    let child: ChildProcess | undefined;
    let exitListener: ((why: string) => void) | undefined;
    let stopping = false;
    const built = {
      store: { gfn: HVM_STORE_GFN, mfn: mfnOf(HVM_STORE_GFN), port: storePort },
      console: { gfn: HVM_CONSOLE_GFN, mfn: mfnOf(HVM_CONSOLE_GFN), port: consolePort },
      consoleSocket: g.serial?.[0] === 'pty' ? p.serialSocket : undefined,
      consoleLog: g.serial?.[0] === 'pty' ? p.consoleLog : undefined,
      xenstore: { 'hvmloader/bios': 'xenlab', 'platform/acpi': '1' },
      pids: () => (child?.pid !== undefined && child.exitCode === null && child.signalCode === null ? [child.pid] : []),
      onExit: (l: (why: string) => void) => (exitListener = l),
      async start() {
        child = await startQemuDm(env, domid, g);
        const c = child;
        c.once('exit', (code, sig) => {
          // The hypervisor has crashed the guest already (its ioreq channel closed).
          if (!stopping) exitListener?.(`qemu-dm (pid ${c.pid}) exited (${sig ?? `code ${code}`}); its guest crashed`);
        });
      },
      async destroy() {
        stopping = true;
        // The domain goes first, so qemu-dm's going cannot look like a crash of a live guest.
        await hc.call('domctl', 'destroydomain', { domain: domid }).catch(() => {});
        await stopQemuDm(env, domid, child);
      },
    };
    return built;
  },
};
