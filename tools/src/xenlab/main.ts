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
  for (const f of [L.hypervisorReady, L.hypervisorPid, L.dom0Ready, L.dom0Pid, L.hypervisorStopped]) rmSync(f, { force: true });
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
  const dom0Log = `${L.logDir}/dom0.log`;
  while (!existsSync(L.dom0Ready)) {
    if (exited !== null) {
      // The hypervisor stops the host when dom0 dies while booting; end whatever outlived it.
      const left = await endLeftovers(L);
      const why = readNote(L.hypervisorStopped);
      throw new UserError(
        `xenlab start: the hypervisor exited (code ${exited}) while booting${why ? `: ${why}` : ''}${left ? `; stopped ${left} leftover process(es)` : ''}\n` +
          `${logPath} ends:\n${tail(logPath)}` +
          (why && existsSync(dom0Log) ? `\n${dom0Log} ends:\n${tail(dom0Log)}` : ''),
      );
    }
    if (Date.now() > deadline) {
      // Leave nothing half up: stop what was started (hypervisor, dom0, xenstored), keep the logs.
      await stop(L, () => {});
      throw new UserError(`xenlab start: the host did not come up within 30 s (dom0 never became ready), so it was stopped; see ${L.logDir}/*.log`);
    }
    await sleep(50);
  }
  out(`xenlab: host started in ${L.runDir} (hypervisor pid ${hv.pid}); xenstored at ${L.xenstoredSocket}`);
}

/** The first line of a note file, or undefined. */
function readNote(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim().split('\n')[0] || undefined;
  } catch {
    return undefined;
  }
}

/**
 * A live process of this host: its command line names the run directory (every one of them is
 * started with it), so a pid file left by a crash that the system has since reused is not ours.
 */
function ours(pid: number | undefined, L: HostLayout): boolean {
  if (!alive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(L.runDir);
  } catch {
    return false;
  }
}

/** The hypervisor is gone: SIGTERM the helpers it started (dom0, xenstored) if they outlived it. */
async function endLeftovers(L: HostLayout): Promise<number> {
  const orphans = [readPid(L.dom0Pid), readPid(L.xenstoredPid)].filter((p) => ours(p, L));
  for (const p of orphans) process.kill(p!, 'SIGTERM');
  const deadline = Date.now() + 5000;
  while (orphans.some((p) => alive(p)) && Date.now() < deadline) await sleep(50);
  for (const p of orphans) if (alive(p)) process.kill(p!, 'SIGKILL');
  return orphans.length;
}

async function stop(L: HostLayout, say: (s: string) => void = out): Promise<void> {
  const pid = readPid(L.hypervisorPid);
  const helpers = [readPid(L.dom0Pid), readPid(L.xenstoredPid)];
  if (!alive(pid)) {
    const n = await endLeftovers(L);
    say(n ? `xenlab: the hypervisor in ${L.runDir} was not running; stopped ${n} leftover process(es)` : `xenlab: no host running in ${L.runDir}`);
    return;
  }
  process.kill(pid!, 'SIGTERM');
  const deadline = Date.now() + 15_000;
  while (alive(pid) && Date.now() < deadline) await sleep(50);
  if (alive(pid)) {
    // It did not stop in time: end exactly the processes this host started.
    for (const p of [pid, ...helpers]) if (ours(p, L)) process.kill(p!, 'SIGKILL');
    say(`xenlab: host in ${L.runDir} did not stop within 15 s; killed it`);
    return;
  }
  // dom0 stops xenstored; if dom0 was gone already, nothing did.
  const left = await endLeftovers(L);
  say(`xenlab: host in ${L.runDir} stopped${left ? ` (and ${left} leftover process(es))` : ''}`);
}

async function status(L: HostLayout, argv: string[]): Promise<number> {
  const asJson = argv.includes('--json');
  const hvPid = readPid(L.hypervisorPid);
  const st: Record<string, unknown> = {
    run_dir: L.runDir,
    hypervisor: { pid: hvPid ?? null, running: alive(hvPid) },
    dom0: { pid: readPid(L.dom0Pid) ?? null, ready: existsSync(L.dom0Ready) },
    xenstored: { pid: readPid(L.xenstoredPid) ?? null, socket: existsSync(L.xenstoredSocket) ? L.xenstoredSocket : null },
  };
  const stopped = alive(hvPid) ? undefined : readNote(L.hypervisorStopped);
  if (stopped) st.stopped = stopped;
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
  else if (!up) out(`xenlab: no host running in ${L.runDir}${stopped ? `; it stopped on its own: ${stopped} (logs in ${L.logDir})` : ''}`);
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
