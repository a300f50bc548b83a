/**
 * The HVM domain builder and its device model's lifecycle (libxl's `libxl__build_hvm` plus
 * `libxl__spawn_local_dm` / `libxl__destroy_device_model`; xc_dom_hvm in libxc). For an xl.cfg
 * with `type = "hvm"` it:
 *   1. creates the domain (XEN_DOMCTL_CDF_hvm), paused, and gives it RAM where a PC has RAM:
 *      0-9FFFFh (640 KiB) and F0000-FFFFFh (the BIOS's 64 KiB). A0000-EFFFFh is left a hole,
 *      so VGA text memory at B8000h is MMIO served by qemu-dm. The 80186 addresses 1 MiB, so
 *      `memory` above that is a limit (max_mem), not populated;
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
 * This module never imports qemu-dm (a process never imports another process): it starts it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HVM_PARAM, XEN_DOMCTL_CDF, hostLayout, type HypercallClient } from '@xenlab/xen-public';
import type { XenstoreClient } from '@xenlab/xenstore-client';

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
export const HVM_RESET_CS = 0xf000;
export const HVM_RESET_IP = 0xfff0;
const LOW_RAM_FRAMES = 0xa0; // 0-9FFFFh
const BIOS_FIRST_GFN = 0xf0; // F0000h-FFFFFh

const QEMU_DM_MAIN = fileURLToPath(new URL('../../../qemu-dm/src/main.ts', import.meta.url));

export const hvmPaths = (runDir: string, domid: number) => {
  const L = hostLayout(runDir);
  return {
    dmDir: join(runDir, 'qemu-dm', String(domid)),
    dmPid: join(runDir, 'qemu-dm', String(domid), 'pid'),
    dmLog: join(L.logDir, `qemu-dm-d${domid}.log`),
    dmState: `/local/domain/0/device-model/${domid}`,
  };
};

export interface HvmDomain {
  domid: number;
  qemuDm: ChildProcess;
}

/** The gfns an HVM domain of this builder gets: conventional memory and the BIOS area. */
export function hvmRamGfns(): number[] {
  const g: number[] = [];
  for (let i = 0; i < LOW_RAM_FRAMES; i++) g.push(i);
  for (let i = BIOS_FIRST_GFN; i < 0x100; i++) g.push(i);
  return g;
}

/** Build, start qemu-dm, wait for it, unpause (unless `paused`). Cleans up after itself on failure. */
export async function createHvmDomain(env: HvmBuilderEnv, cfg: HvmGuestConfig, opts: { paused?: boolean } = {}): Promise<HvmDomain> {
  const { hc, xs } = env;
  const log = env.log ?? (() => {});
  if (cfg.disks.length > 1) log(`hvm: d?: only the first disk is emulated (primary master); ${cfg.disks.length - 1} more ignored`);
  const serial = cfg.serial?.[0] ?? 'none';
  if (serial !== 'pty' && serial !== 'none') throw new Error(`xl create: serial '${serial}' is not supported for HVM guests (use serial = "pty")`);
  const boot = cfg.boot ?? 'c';
  if (!boot.includes('c')) throw new Error(`xl create: boot = "${boot}": only disk boot ("c") is emulated`);
  const disk = cfg.disks[0];
  if (disk && !existsSync(disk.path)) throw new Error(`xl create: disk '${disk.vdev ?? 'hda'}': file ${disk.path} not found`);

  const { domain } = await hc.call('domctl', 'createdomain', { max_vcpus: Math.max(1, cfg.vcpus), flags: XEN_DOMCTL_CDF.hvm });
  let child: ChildProcess | undefined;
  try {
    const gfns = hvmRamGfns();
    await hc.call('domctl', 'max_mem', { domain, max_memkb: Math.max(cfg.memoryMiB * 1024, (gfns.length + 1) * 4) });
    const r = await hc.call('memory_op', 'populate_physmap', { domid: domain, extent_start: [...gfns, HVM_IOREQ_GFN] });
    if (r.nr_done !== gfns.length + 1) throw new Error(`xl create: not enough free memory for ${cfg.name} (${r.nr_done} of ${gfns.length + 1} frames)`);
    await hc.call('hvm_op', 'set_param', { domid: domain, index: HVM_PARAM.DM_DOMAIN, value: 0 });
    await hc.call('hvm_op', 'set_param', { domid: domain, index: HVM_PARAM.IOREQ_PFN, value: HVM_IOREQ_GFN });
    await hc.call('domctl', 'setvcpucontext', { domain, vcpu: 0, ctx: { cs: HVM_RESET_CS, ip: HVM_RESET_IP, flags: 0x0002 } });

    const dom = `/local/domain/${domain}`;
    await xs.write(`${dom}/name`, cfg.name);
    await xs.write(`${dom}/domid`, String(domain));
    await xs.write(`${dom}/memory/static-max`, String(cfg.memoryMiB * 1024));
    await xs.write(`${dom}/memory/target`, String(cfg.memoryMiB * 1024));
    await xs.write(`${dom}/hvmloader/bios`, 'xenlab');
    await xs.write(`/libxl/${domain}/type`, 'hvm');
    await xs.write(`/libxl/${domain}/dm-version`, 'xenlab-qemu-dm');

    const p = hvmPaths(env.runDir, domain);
    mkdirSync(p.dmDir, { recursive: true });
    mkdirSync(hostLayout(env.runDir).logDir, { recursive: true });
    const args = ['--import', 'tsx', QEMU_DM_MAIN, '--run-dir', env.runDir, '--domid', String(domain), '--serial', serial, '--boot', boot];
    if (disk) args.push('--disk', `${disk.path}${disk.readOnly ? ',ro' : ''}`);
    if (cfg.diskMode) args.push('--disk-mode', cfg.diskMode);
    const out = openSync(p.dmLog, 'a');
    child = spawn(process.execPath, args, { stdio: ['ignore', out, out] });
    closeSync(out);
    const c = child;
    const exited = new Promise<string>((res) => c.once('exit', (code, sig) => res(sig ?? `code ${code}`)));
    await xs.write(`${dom}/image/device-model-pid`, String(child.pid));
    await waitRunning(xs, p.dmState, env.dmTimeoutMs ?? 20_000, exited, p.dmLog);
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
  const { hc, xs } = env;
  const p = hvmPaths(env.runDir, domid);
  await hc.call('domctl', 'destroydomain', { domain: domid }).catch(() => {});
  let pid = child?.pid;
  if (pid === undefined && existsSync(p.dmPid)) pid = Number(readFileSync(p.dmPid, 'utf8').trim()) || undefined;
  if (pid !== undefined && (child ? child.exitCode === null && child.signalCode === null : pidAlive(pid))) {
    const gone = child
      ? new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())))
      : (async () => {
          while (pidAlive(pid!)) await new Promise((r) => setTimeout(r, 20));
        })();
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
    const t = setTimeout(() => {
      try {
        process.kill(pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, 5000);
    await gone;
    clearTimeout(t);
  }
  for (const path of [`/local/domain/${domid}`, p.dmState, `/libxl/${domid}`]) await xs.rm(path).catch(() => {});
  rmSync(p.dmDir, { recursive: true, force: true });
}
