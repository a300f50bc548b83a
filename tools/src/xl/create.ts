/**
 * xl's domain lifecycle commands, served by dom0's toolstack service: `create [-c] [-p] <cfg>
 * [key=value...]`, `destroy`, `shutdown [-w]`, `reboot [-w]`, `console`, `block-list`. xl parses
 * the config (tools/src/xl-cfg) and sends plain data, as xl hands libxl a libxl_domain_config.
 */
import { existsSync } from 'node:fs';
import { XlCfgError, loadXlConfig, type XlConfig } from '../xl-cfg/index.ts';
import type { ToolstackDomainConfig } from '@xenlab/xen-public';
import { attachConsole } from './console.ts';
import { UserError, resolveDomain, type Host } from './host.ts';
import { ToolstackClient } from './toolstack-client.ts';

const out = (s: string): void => void process.stdout.write(s.endsWith('\n') ? s : s + '\n');

export function toToolstackConfig(c: XlConfig): ToolstackDomainConfig {
  const disks = c.disks.map((d) => {
    if (d.target === undefined) throw new UserError(`xl create: disk '${d.spec}' has no target (an empty cdrom is not supported for ${c.type} guests) (from disk = [...] in ${c.file})`);
    if (!existsSync(d.target)) throw new UserError(`xl create: disk '${d.vdev.name}': file ${d.target} not found (from disk = [...] in ${c.file}; create it first, e.g. truncate -s 4M ${d.target})`);
    if (d.format !== 'raw') throw new UserError(`xl create: disk '${d.vdev.name}': format=${d.format} is not supported; only raw images are (from disk = [...] in ${c.file})`);
    return { target: d.target, vdev: d.vdev.name, devid: d.vdev.number, access: d.access, devtype: d.devtype, format: d.format, spec: d.spec };
  });
  if (c.kernel !== undefined && !existsSync(c.kernel)) throw new UserError(`xl create: kernel '${c.kernel}' not found (from kernel = ... in ${c.file})`);
  return {
    file: c.file,
    name: c.name,
    type: c.type,
    memory: c.memory,
    maxmem: Math.max(c.maxmem, c.memory),
    vcpus: c.vcpus,
    ...(c.kernel !== undefined ? { kernel: c.kernel } : {}),
    disks,
    onPoweroff: c.onPoweroff,
    onReboot: c.onReboot,
    onCrash: c.onCrash,
    ...(c.uuid !== undefined ? { uuid: c.uuid } : {}),
    extra: { ...(c.boot !== undefined ? { boot: c.boot } : {}), serial: [...c.serial], ...xenlabSettings(c) },
  };
}

async function withToolstack<R>(host: Host, tool: string, f: (t: ToolstackClient) => Promise<R>): Promise<R> {
  const t = await ToolstackClient.connect(host.layout, tool);
  try {
    return await f(t);
  } finally {
    t.close();
  }
}

export async function cmdCreate(host: Host, argv: string[]): Promise<void> {
  let console = false;
  let paused = false;
  let json = false;
  const rest: string[] = [];
  for (const a of argv) {
    if (a === '-c') console = true;
    else if (a === '-p') paused = true;
    else if (a === '--json') json = true;
    else if (a === '-f' || a === '-q' || a === '--quiet') continue;
    else rest.push(a);
  }
  const [file, ...overrides] = rest;
  if (!file) throw new UserError('xl create: usage: xl create [-c] [-p] <ConfigFile> [key=value...]');
  let cfg: XlConfig;
  try {
    cfg = loadXlConfig(file, overrides);
  } catch (e) {
    if (e instanceof XlCfgError) throw new UserError(e.format('xl create'));
    throw e;
  }
  const tcfg = toToolstackConfig(cfg);
  await withToolstack(host, 'xl create', async (t) => {
    // With -c the console is attached before the guest runs, so no byte is missed.
    const d = await t.call('xl create', 'create', { config: tcfg, paused: paused || console });
    if (json) out(JSON.stringify(d));
    else process.stderr.write(`Parsing config from ${cfg.file}\n`);
    if (!console) return;
    await attachConsole(d.consoleSocket, {
      replay: true,
      onConnected: async () => {
        if (!paused) await host.hc.call('domctl', 'unpausedomain', { domain: d.domid });
      },
    });
  });
}

export async function cmdDestroy(host: Host, argv: string[]): Promise<void> {
  const domid = await resolveDomain(host, 'xl destroy', argv.find((a) => !a.startsWith('-')));
  if (domid === 0) throw new UserError('xl destroy: domain 0 cannot be destroyed');
  await withToolstack(host, 'xl destroy', (t) => t.call('xl destroy', 'destroy', { domid }));
}

export async function cmdShutdown(host: Host, argv: string[], reason: 'poweroff' | 'reboot'): Promise<void> {
  const tool = reason === 'poweroff' ? 'xl shutdown' : 'xl reboot';
  const wait = argv.includes('-w');
  const domid = await resolveDomain(host, tool, argv.find((a) => !a.startsWith('-')));
  if (domid === 0) throw new UserError(`${tool}: domain 0 is shut down with \`npx xenlab stop\``);
  await withToolstack(host, tool, (t) => t.call(tool, 'shutdown', { domid, reason, wait }));
}

export async function cmdConsole(host: Host, argv: string[]): Promise<void> {
  const domid = await resolveDomain(host, 'xl console', argv.find((a) => !a.startsWith('-')));
  const d = await withToolstack(host, 'xl console', (t) => t.call('xl console', 'domain', { domid }));
  await attachConsole(d.consoleSocket, { replay: argv.includes('--replay') });
}

export async function cmdBlockList(host: Host, argv: string[]): Promise<void> {
  const json = argv.includes('--json');
  const domid = await resolveDomain(host, 'xl block-list', argv.find((a) => !a.startsWith('-')));
  const devs = await withToolstack(host, 'xl block-list', (t) => t.call('xl block-list', 'block-list', { domid }));
  if (json) return out(JSON.stringify(devs, null, 2));
  // xl 4.17's layout: "%-5s %-3s %-6s %-5s %-6s %-8s %-30s", rows "%-5d %-3d %-6d %-5d %-6d %-8d %-30s"
  // (devid, backend domid, frontend domid, frontend state, event channel, ring-ref, backend path).
  out(`${'Vdev'.padEnd(5)} ${'BE'.padEnd(3)} ${'handle'.padEnd(6)} ${'state'.padEnd(5)} ${'evt-ch'.padEnd(6)} ${'ring-ref'.padEnd(8)} ${'BE-path'.padEnd(30)}`);
  for (const d of devs) {
    const n = (v: number | null, w: number) => String(v ?? -1).padEnd(w);
    out(`${String(d.devid).padEnd(5)} ${String(d.backendId).padEnd(3)} ${String(domid).padEnd(6)} ${n(d.frontendState, 5)} ${n(d.eventChannel, 6)} ${n(d.ringRef, 8)} ${d.backendPath.padEnd(30)}`);
  }
}

/**
 * xenlab's own xl.cfg keys (`xenlab_disk_mode = "dma"`, `xenlab_write_through = 0`), passed to the
 * builders verbatim in `extra`: each builder reads the ones it knows.
 */
function xenlabSettings(c: XlConfig): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, s] of c.settings) if (k.startsWith('xenlab_') && !('items' in s.value)) out[k] = s.value.text;
  return out;
}
