/**
 * `npx xenlab start [--pcpus N] [--memory MiB] [--dom0-memory MiB] | stop | status [--json]`:
 * boots a host (hypervisor -> dom0 -> xenstored) in the run directory named by XENLAB_RUN_DIR
 * (default: a per-user directory under the system temp dir), stops it, or reports on it.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { HypercallClient, defaultRunDir, hostLayout, processEntry, type HostLayout } from '@xenlab/xen-public';

class UserError extends Error {}

const out = (s: string): void => void process.stdout.write(s + '\n');

function readPid(path: string): number | undefined {
  try {
    const n = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tail(path: string, lines = 15): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function start(L: HostLayout, argv: string[]): Promise<void> {
  const pass: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--pcpus' || a === '--memory' || a === '--dom0-memory') {
      const v = argv[++i];
      if (v === undefined || !/^\d+$/.test(v)) throw new UserError(`xenlab start: ${a} needs a whole number`);
      pass.push(a, v);
    } else throw new UserError(`xenlab start: unknown option '${a}' (options: --pcpus N, --memory MiB, --dom0-memory MiB)`);
  }
  const running = readPid(L.hypervisorPid);
  if (alive(running)) throw new UserError(`xenlab start: a host is already running in ${L.runDir} (hypervisor pid ${running}); stop it with \`npx xenlab stop\``);
  mkdirSync(L.logDir, { recursive: true });
  // A host that crashed leaves its markers behind: without this, a stale dom0/ready would make
  // us report success before the new dom0 is up.
  for (const f of [L.hypervisorReady, L.hypervisorPid, L.dom0Ready, L.dom0Pid]) rmSync(f, { force: true });
  const logPath = `${L.logDir}/hypervisor.log`;
  const log = openSync(logPath, 'a');
  const hv = spawn(process.execPath, [...processEntry('hypervisor'), '--run-dir', L.runDir, ...pass], {
    detached: true,
    stdio: ['ignore', log, log],
    env: { ...process.env, XENLAB_RUN_DIR: L.runDir },
  });
  closeSync(log);
  let exited: number | null = null;
  hv.on('exit', (code) => (exited = code ?? -1));
  hv.unref();
  const deadline = Date.now() + 30_000;
  while (!existsSync(L.dom0Ready)) {
    if (exited !== null) throw new UserError(`xenlab start: the hypervisor exited (code ${exited}) while booting; its log (${logPath}) ends:\n${tail(logPath)}`);
    if (Date.now() > deadline) {
      throw new UserError(`xenlab start: the host did not come up within 30 s (dom0 never became ready); see ${L.logDir}/*.log, then \`npx xenlab stop\``);
    }
    await sleep(50);
  }
  out(`xenlab: host started in ${L.runDir} (hypervisor pid ${hv.pid}); xenstored at ${L.xenstoredSocket}`);
}

async function stop(L: HostLayout): Promise<void> {
  const pid = readPid(L.hypervisorPid);
  const helpers = [readPid(L.dom0Pid), readPid(`${L.xenstoredDir}/pid`)];
  if (!alive(pid)) {
    // The hypervisor is gone; end the helpers it started if they outlived it.
    const orphans = helpers.filter((p) => alive(p));
    for (const p of orphans) process.kill(p!, 'SIGTERM');
    out(orphans.length ? `xenlab: the hypervisor in ${L.runDir} was not running; stopped ${orphans.length} leftover process(es)` : `xenlab: no host running in ${L.runDir}`);
    return;
  }
  process.kill(pid!, 'SIGTERM');
  const deadline = Date.now() + 15_000;
  while (alive(pid) && Date.now() < deadline) await sleep(50);
  if (alive(pid)) {
    // It did not stop in time: end exactly the processes this host started.
    for (const p of [pid, ...helpers]) if (alive(p)) process.kill(p!, 'SIGKILL');
    out(`xenlab: host in ${L.runDir} did not stop within 15 s; killed it`);
    return;
  }
  out(`xenlab: host in ${L.runDir} stopped`);
}

async function status(L: HostLayout, argv: string[]): Promise<number> {
  const asJson = argv.includes('--json');
  const hvPid = readPid(L.hypervisorPid);
  const st: Record<string, unknown> = {
    run_dir: L.runDir,
    hypervisor: { pid: hvPid ?? null, running: alive(hvPid) },
    dom0: { pid: readPid(L.dom0Pid) ?? null, ready: existsSync(L.dom0Ready) },
    xenstored: { pid: readPid(`${L.xenstoredDir}/pid`) ?? null, socket: existsSync(L.xenstoredSocket) ? L.xenstoredSocket : null },
  };
  if (alive(hvPid) && existsSync(L.dom0Token)) {
    try {
      const hc = await HypercallClient.connect(L.hypervisorSocket, readFileSync(L.dom0Token, 'utf8').trim(), { timeoutMs: 5000 });
      const pi = await hc.call('sysctl', 'physinfo', null);
      const doms = await hc.call('sysctl', 'getdomaininfolist', { first_domain: 0, max_domains: 0x7ff0 });
      hc.close();
      st.host = { nr_cpus: pi.nr_cpus, total_memory_mib: Math.floor(pi.total_pages / 256), free_memory_mib: Math.floor(pi.free_pages / 256), domains: doms.length };
    } catch (e) {
      st.error = `hypervisor not answering: ${(e as Error).message}`;
    }
  }
  const up = alive(hvPid);
  if (asJson) out(JSON.stringify(st, null, 2));
  else if (!up) out(`xenlab: no host running in ${L.runDir}`);
  else {
    const h = st.host as { nr_cpus: number; total_memory_mib: number; free_memory_mib: number; domains: number } | undefined;
    out(`xenlab host in ${L.runDir}`);
    out(`  hypervisor  pid ${hvPid}${h ? `, ${h.nr_cpus} pCPUs, ${h.total_memory_mib} MiB (${h.free_memory_mib} MiB free), ${h.domains} domain(s)` : ''}`);
    out(`  dom0        ${(st.dom0 as { ready: boolean }).ready ? `ready (pid ${readPid(L.dom0Pid)})` : 'not ready'}`);
    out(`  xenstored   ${existsSync(L.xenstoredSocket) ? L.xenstoredSocket : 'not running'}`);
    if (st.error) out(`  error       ${String(st.error)}`);
  }
  return up ? 0 : 3;
}

async function main(): Promise<number> {
  const [cmd, ...rest] = process.argv.slice(2);
  const L = hostLayout(defaultRunDir());
  try {
    switch (cmd) {
      case 'start':
        await start(L, rest);
        return 0;
      case 'stop':
        await stop(L);
        return 0;
      case 'status':
        return await status(L, rest);
      default:
        process.stderr.write('usage: xenlab start [--pcpus N] [--memory MiB] [--dom0-memory MiB] | stop | status [--json]\n');
        return 2;
    }
  } catch (e) {
    process.stderr.write(`${e instanceof UserError ? e.message : ((e as Error).stack ?? String(e))}\n`);
    return 1;
  }
}

main().then((c) => process.exit(c));
