/**
 * `xl`: the xenlab toolstack CLI. Commands print exactly Xen 4.17 xl's layouts (fact sheet §13)
 * and each also takes `--json`. It talks to the hypervisor with dom0's privileges, as xl in a
 * real dom0 does through libxl/libxc.
 */
import { hostname, machine, release, version } from 'node:os';
import {
  XEN_DOMINF,
  XEN_DOMCTL_SCHEDOP,
  XEN_SCHEDULER,
  XEN_SYSCTL_SCHEDOP,
  XEN_VCPUAFFINITY,
  XEN_VERSION,
  XenError,
  type DomainInfo,
} from '@xenlab/xen-public';
import {
  LIST_HEADER,
  SCHED_CREDIT_HEADER,
  VCPU_LIST_HEADER,
  infoLines,
  listRow,
  schedCreditPool,
  schedCreditRow,
  stateString,
  vcpuRow,
  type VcpuRow,
} from './format.ts';
import { cmdBlockList, cmdConsole, cmdCreate, cmdDestroy, cmdShutdown } from './create.ts';
import { UserError, connectHost, domainNames, formatCpuMap, listDomains, parseCpuList, resolveDomain, type Host } from './host.ts';

interface Opts {
  json: boolean;
  flags: Set<string>;
  values: Map<string, string>;
  positional: string[];
}

/** Splits argv into flags (`-l`), options with values (`-d D`) and positional arguments. */
function parse(argv: string[], withValue: string[]): Opts {
  const o: Opts = { json: false, flags: new Set(), values: new Map(), positional: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') o.json = true;
    else if (withValue.includes(a)) {
      const v = argv[++i];
      if (v === undefined) throw new UserError(`xl: option ${a} needs a value`);
      o.values.set(a, v);
    } else if (a.startsWith('-') && a.length > 1 && !/^-\d/.test(a)) o.flags.add(a);
    else o.positional.push(a);
  }
  return o;
}

const out = (s: string): void => void process.stdout.write(s.endsWith("\n") ? s : s + "\n");
const json = (v: unknown): void => out(JSON.stringify(v, null, 2));

async function cmdList(host: Host, argv: string[]): Promise<void> {
  const o = parse(argv, []);
  let doms = await listDomains(host);
  if (o.positional.length) {
    const ids = await Promise.all(o.positional.map((p) => resolveDomain(host, 'xl list', p)));
    doms = doms.filter((d) => ids.includes(d.domain));
  }
  const names = await domainNames(host, doms.map((d) => d.domain));
  if (o.flags.has('-l') || o.flags.has('--long')) {
    json(await Promise.all(doms.map((d) => longConfig(host, d, names.get(d.domain)!))));
    return;
  }
  if (o.json) {
    json(doms.map((d) => ({ name: names.get(d.domain), domid: d.domain, mem_mib: Math.floor(d.tot_pages / 256), vcpus: d.nr_online_vcpus, state: stateString(d.flags), time_s: d.cpu_time / 1e9, info: d })));
    return;
  }
  out(LIST_HEADER);
  for (const d of doms) out(listRow(names.get(d.domain)!, d));
}

/** `xl list -l`: libxl_domain_config as far as the hypervisor knows it (no toolstack configs yet). */
async function longConfig(host: Host, d: DomainInfo, name: string): Promise<unknown> {
  let sched = { weight: 256, cap: 0 };
  try {
    sched = await host.hc.call('domctl', 'scheduler_op', { domain: d.domain, sched_id: XEN_SCHEDULER.CREDIT, cmd: XEN_DOMCTL_SCHEDOP.getinfo });
  } catch {
    // a dying domain has no scheduler parameters
  }
  const uuid = d.handle.replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');
  const empty = { disks: [], nics: [], pcidevs: [], rdms: [], dtdevs: [], vfbs: [], vkbs: [], vtpms: [], p9s: [], pvcallsifs: [], vdispls: [], vsnds: [], channels: [], usbctrls: [], usbdevs: [] };
  return {
    domid: d.domain,
    config: {
      c_info: { type: d.flags & XEN_DOMINF.hvm_guest ? 'hvm' : 'pv', name, uuid, ssidref: d.ssidref },
      b_info: { max_vcpus: d.max_vcpu_id + 1, max_memkb: d.max_pages * 4, target_memkb: d.tot_pages * 4, sched_params: { sched: 'credit', weight: sched.weight, cap: sched.cap } },
      ...empty,
      on_poweroff: 'destroy',
      on_reboot: 'restart',
      on_watchdog: 'destroy',
      on_crash: 'destroy',
      on_soft_reset: 'soft_reset',
    },
  };
}

async function cmdInfo(host: Host, argv: string[]): Promise<void> {
  const o = parse(argv, []);
  const pi = await host.hc.call('sysctl', 'physinfo', null);
  const mhz = `${Math.floor(pi.cpu_khz / 1000)}.${String(pi.cpu_khz % 1000).padStart(3, '0')}`;
  const caps: string[] = [];
  if (pi.capabilities & 2) caps.push('pv');
  if (pi.capabilities & 1) caps.push('hvm');
  if (pi.capabilities & 0x100) caps.push('gnttab-v1');
  const pairs: [string, string][] = [
    ['host', hostname()],
    ['release', release()],
    ['version', version()],
    ['machine', machine()],
    ['nr_cpus', String(pi.nr_cpus)],
    ['max_cpu_id', String(pi.max_cpu_id)],
    ['nr_nodes', String(pi.nr_nodes)],
    ['cores_per_socket', String(pi.cores_per_socket)],
    ['threads_per_core', String(pi.threads_per_core)],
    ['cpu_mhz', mhz],
    ['hw_caps', pi.hw_cap.map((x) => (x >>> 0).toString(16).padStart(8, '0')).join(':')],
    ['virt_caps', caps.map((c) => ` ${c}`).join('')],
    ['total_memory', String(Math.floor(pi.total_pages / 256))],
    ['free_memory', String(Math.floor(pi.free_pages / 256))],
    ['sharing_freed_memory', '0'],
    ['sharing_used_memory', '0'],
    ['outstanding_claims', String(Math.floor(pi.outstanding_pages / 256))],
    ['free_cpus', '0'],
    ['xen_major', String(XEN_VERSION.major)],
    ['xen_minor', String(XEN_VERSION.minor)],
    ['xen_extra', XEN_VERSION.extra],
    ['xen_version', `${XEN_VERSION.major}.${XEN_VERSION.minor}${XEN_VERSION.extra}`],
    ['xen_caps', 'xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_64'],
    ['xen_scheduler', 'credit'],
    ['xen_pagesize', '4096'],
    ['platform_params', 'virt_start=0xffff800000000000'],
    ['xen_changeset', 'xenlab'],
    ['xen_commandline', `pcpus=${pi.nr_cpus} memory=${Math.floor(pi.total_pages / 256)}M`],
    ['cc_compiler', `node ${process.version}`],
    ['cc_compile_by', 'xenlab'],
    ['cc_compile_domain', 'xenlab'],
    ['cc_compile_date', ''],
    ['build_id', ''],
    ['xend_config_format', '4'],
  ];
  if (o.json) json(Object.fromEntries(pairs.map(([k, v]) => [k, v.trim()])));
  else out(infoLines(pairs));
}

async function cmdDmesg(host: Host, argv: string[]): Promise<void> {
  const o = parse(argv, []);
  const r = await host.hc.call('sysctl', 'readconsole', { clear: o.flags.has('-c') ? 1 : 0 });
  if (o.json) json(r);
  else process.stdout.write(r.text);
}

async function cmdPause(host: Host, argv: string[], pause: boolean): Promise<void> {
  const o = parse(argv, []);
  const tool = pause ? 'xl pause' : 'xl unpause';
  const domain = await resolveDomain(host, tool, o.positional[0]);
  try {
    await host.hc.call('domctl', pause ? 'pausedomain' : 'unpausedomain', { domain });
  } catch (e) {
    if (e instanceof XenError && e.errno === 'EINVAL') {
      throw new UserError(`${tool}: domain ${domain} cannot be ${pause ? 'paused' : 'unpaused'}: ${e.detail ?? e.errno}`);
    }
    throw e;
  }
  if (o.json) json({ domid: domain, paused: pause });
}

async function cmdVcpuList(host: Host, argv: string[]): Promise<void> {
  const o = parse(argv, []);
  const pi = await host.hc.call('sysctl', 'physinfo', null);
  let doms = await listDomains(host);
  if (o.positional.length) {
    const ids = await Promise.all(o.positional.map((p) => resolveDomain(host, 'xl vcpu-list', p)));
    doms = doms.filter((d) => ids.includes(d.domain));
  }
  doms = doms.filter((d) => !(d.flags & XEN_DOMINF.dying));
  const names = await domainNames(host, doms.map((d) => d.domain));
  const rows: VcpuRow[] = [];
  for (const d of doms) {
    for (let v = 0; v <= d.max_vcpu_id && d.max_vcpu_id !== 0xffffffff; v++) {
      const vi = await host.hc.call('domctl', 'getvcpuinfo', { domain: d.domain, vcpu: v });
      const aff = await host.hc.call('domctl', 'getvcpuaffinity', { domain: d.domain, vcpu: v });
      rows.push({
        name: names.get(d.domain)!,
        domid: d.domain,
        vcpu: v,
        online: !!vi.online,
        running: !!vi.running,
        blocked: !!vi.blocked,
        cpu: vi.cpu,
        timeNs: vi.cpu_time,
        hard: formatCpuMap(aff.cpumap_hard, pi.nr_cpus),
        soft: formatCpuMap(aff.cpumap_soft, pi.nr_cpus),
      });
    }
  }
  if (o.json) return json(rows);
  out(VCPU_LIST_HEADER);
  for (const r of rows) out(vcpuRow(r));
}

async function cmdVcpuPin(host: Host, argv: string[]): Promise<void> {
  const o = parse(argv, []);
  const [domArg, vcpuArg, hardArg, softArg] = o.positional;
  const usage = 'usage: xl vcpu-pin <Domain> <VCPU|all> <Hard affinity|-> [Soft affinity]';
  if (!domArg || !vcpuArg || !hardArg) throw new UserError(`xl vcpu-pin: ${usage}`);
  const domain = await resolveDomain(host, 'xl vcpu-pin', domArg);
  const pi = await host.hc.call('sysctl', 'physinfo', null);
  const info = await host.hc.call('domctl', 'getdomaininfo', { domain });
  const nv = info.max_vcpu_id + 1;
  let vcpus: number[];
  if (vcpuArg === 'all') vcpus = Array.from({ length: nv }, (_, i) => i);
  else if (/^\d+$/.test(vcpuArg) && Number(vcpuArg) < nv) vcpus = [Number(vcpuArg)];
  else throw new UserError(`xl vcpu-pin: domain ${domain} has no vCPU '${vcpuArg}' (it has ${nv})`);
  let flags = 0;
  const arg: { cpumap_hard?: number[]; cpumap_soft?: number[] } = {};
  if (hardArg !== '-') {
    flags |= XEN_VCPUAFFINITY.HARD;
    arg.cpumap_hard = parseCpuList('xl vcpu-pin', hardArg, pi.nr_cpus);
  }
  if (softArg !== undefined && softArg !== '-') {
    flags |= XEN_VCPUAFFINITY.SOFT;
    arg.cpumap_soft = parseCpuList('xl vcpu-pin', softArg, pi.nr_cpus);
  }
  if (!flags) throw new UserError(`xl vcpu-pin: nothing to set. ${usage}`);
  for (const vcpu of vcpus) await host.hc.call('domctl', 'setvcpuaffinity', { domain, vcpu, flags, ...arg });
  if (o.json) json({ domid: domain, vcpus, ...arg });
}

async function cmdSchedCredit(host: Host, argv: string[]): Promise<void> {
  const o = parse(argv, ['-d', '-w', '-c', '-t', '-r', '-m', '-p', '--domain', '--weight', '--cap', '--tslice_ms', '--ratelimit_us']);
  const v = (a: string, b: string) => o.values.get(a) ?? o.values.get(b);
  const num = (s: string | undefined, what: string, max: number): number | undefined => {
    if (s === undefined) return undefined;
    if (!/^\d+$/.test(s) || Number(s) > max) throw new UserError(`xl sched-credit: ${what} must be an integer 0..${max}, not '${s}'`);
    return Number(s);
  };
  const poolOnly = o.flags.has('-s') || o.flags.has('--schedparam');
  const sys = { cpupool_id: 0, sched_id: XEN_SCHEDULER.CREDIT };
  if (poolOnly) {
    const tslice = num(v('-t', '--tslice_ms'), 'tslice', 1000);
    const rl = num(v('-r', '--ratelimit_us'), 'ratelimit', 500000);
    let p = await host.hc.call('sysctl', 'scheduler_op', { ...sys, cmd: XEN_SYSCTL_SCHEDOP.getinfo });
    if (tslice !== undefined || rl !== undefined) {
      p = await host.hc.call('sysctl', 'scheduler_op', { ...sys, cmd: XEN_SYSCTL_SCHEDOP.putinfo, tslice_ms: tslice ?? p.tslice_ms, ratelimit_us: rl ?? p.ratelimit_us });
    }
    if (o.json) return json(p);
    out(schedCreditPool(p.tslice_ms, p.ratelimit_us, p.vcpu_migr_delay_us));
    return;
  }
  const weight = num(v('-w', '--weight'), 'weight', 65535);
  const cap = num(v('-c', '--cap'), 'cap', 65534);
  if (weight === 0) throw new UserError('xl sched-credit: weight must be 1..65535');
  const domArg = v('-d', '--domain');
  if ((weight !== undefined || cap !== undefined) && domArg === undefined) throw new UserError('xl sched-credit: -w/-c need -d <Domain>');
  let doms = (await listDomains(host)).filter((d) => !(d.flags & XEN_DOMINF.dying));
  if (domArg !== undefined) {
    const id = await resolveDomain(host, 'xl sched-credit', domArg);
    doms = doms.filter((d) => d.domain === id);
    if (weight !== undefined || cap !== undefined) {
      await host.hc.call('domctl', 'scheduler_op', { domain: id, sched_id: XEN_SCHEDULER.CREDIT, cmd: XEN_DOMCTL_SCHEDOP.putinfo, weight: weight ?? 0, cap: cap ?? 0xffff });
      if (!o.json) return;
    }
  }
  const names = await domainNames(host, doms.map((d) => d.domain));
  const p = await host.hc.call('sysctl', 'scheduler_op', { ...sys, cmd: XEN_SYSCTL_SCHEDOP.getinfo });
  const rows = [];
  for (const d of doms) {
    const s = await host.hc.call('domctl', 'scheduler_op', { domain: d.domain, sched_id: XEN_SCHEDULER.CREDIT, cmd: XEN_DOMCTL_SCHEDOP.getinfo });
    rows.push({ name: names.get(d.domain)!, domid: d.domain, ...s });
  }
  if (o.json) return json({ pool: p, domains: rows });
  out(schedCreditPool(p.tslice_ms, p.ratelimit_us, p.vcpu_migr_delay_us));
  out(SCHED_CREDIT_HEADER);
  for (const r of rows) out(schedCreditRow(r.name, r.domid, r.weight, r.cap));
}

const COMMANDS: Record<string, { help: string; run: (h: Host, argv: string[]) => Promise<void> }> = {
  list: { help: 'List information about all or some domains (-l: JSON configs)', run: cmdList },
  info: { help: 'Get information about the Xen host', run: cmdInfo },
  dmesg: { help: 'Read and/or clear the hypervisor console ring (-c clears)', run: cmdDmesg },
  pause: { help: 'Pause execution of a domain', run: (h, a) => cmdPause(h, a, true) },
  unpause: { help: 'Unpause a paused domain', run: (h, a) => cmdPause(h, a, false) },
  'vcpu-list': { help: 'List the VCPUs for all or some domains', run: cmdVcpuList },
  'vcpu-pin': { help: 'Set which CPUs a VCPU can use', run: cmdVcpuPin },
  'sched-credit': { help: 'Get/set credit scheduler parameters (-d D -w W -c C; -s -t MS -r US)', run: cmdSchedCredit },
  create: { help: 'Create a domain from a config file (-c: attach its console; -p: leave it paused; key=value overrides)', run: cmdCreate },
  destroy: { help: 'Terminate a domain immediately', run: cmdDestroy },
  shutdown: { help: 'Issue a shutdown signal to a domain (-w: wait until it is gone)', run: (h, a) => cmdShutdown(h, a, 'poweroff') },
  reboot: { help: 'Issue a reboot signal to a domain (-w: wait)', run: (h, a) => cmdShutdown(h, a, 'reboot') },
  console: { help: 'Attach to a domain console (Ctrl-] detaches)', run: cmdConsole },
  'block-list': { help: 'List virtual block devices for a domain', run: cmdBlockList },
};

function help(): string {
  return ['Usage: xl <subcommand> [args] [--json]', '', ...Object.entries(COMMANDS).map(([k, c]) => ` ${k.padEnd(16)}${c.help}`)].join('\n');
}

async function main(): Promise<number> {
  const [cmd, ...rest] = process.argv.slice(2);
  if (!cmd || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    out(help());
    return cmd ? 0 : 2;
  }
  const c = COMMANDS[cmd];
  if (!c) {
    process.stderr.write(`xl: unknown command '${cmd}'\n${help()}\n`);
    return 2;
  }
  let host: Host | undefined;
  try {
    host = await connectHost(`xl ${cmd}`);
    await c.run(host, rest);
    return 0;
  } catch (e) {
    if (e instanceof UserError) process.stderr.write(`${e.message}\n`);
    else if (e instanceof XenError) process.stderr.write(`xl ${cmd}: the hypervisor refused: ${e.message}\n`);
    else process.stderr.write(`xl ${cmd}: ${(e as Error).stack ?? e}\n`);
    return 1;
  } finally {
    host?.close();
  }
}

main().then((code) => process.exit(code));
