/**
 * The dom0 process: `node dom0/src/main.ts --run-dir DIR`, started by the hypervisor. It
 * connects as domain 0 (owner of its connection: if it dies, dom0 has died), starts xenstored on
 * `<run dir>/xenstored/socket`, writes the base xenstore tree, applies on_poweroff/on_crash to
 * domains that shut down (toolstack/domain-reaper.ts), and stops xenstored on SIGTERM. The
 * toolstack service and the backends grow here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { HypercallClient, defaultRunDir, hostLayout, processEntry } from '@xenlab/xen-public';
import { XenstoreClient } from '@xenlab/xenstore-client';
import { DomainReaper, type ShutdownAction } from './toolstack/domain-reaper.ts';
import { ToolstackService } from './toolstack/service.ts';

/**
 * Connects to the xenstored we just started. Its socket file appears at bind(), a moment before
 * listen(): a connect in between is refused, so retry (bounded) until it accepts — or it exits.
 */
async function connectXenstored(path: string, ms: number, proc: ChildProcess): Promise<XenstoreClient> {
  const end = Date.now() + ms;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`xenstored exited (${proc.signalCode ?? `code ${proc.exitCode}`}) before accepting connections on ${path}`);
    }
    try {
      return await XenstoreClient.connect(path);
    } catch (e) {
      if (Date.now() > end) throw new Error(`xenstored did not accept connections on ${path} within ${ms} ms: ${(e as Error).message}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The xenstored this process started: stopped on a failed start too, never left behind. */
let xenstored: ChildProcess | undefined;

/** SIGTERM, then SIGKILL after `ms`; resolves when it has exited. */
async function stopChild(p: ChildProcess | undefined, ms = 5000): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), ms);
  await exited;
  clearTimeout(t);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const i = argv.indexOf('--run-dir');
  const L = hostLayout(i >= 0 && argv[i + 1] ? argv[i + 1] : defaultRunDir());
  const log = (m: string) => process.stderr.write(`dom0: ${m}\n`);

  const token = readFileSync(L.dom0Token, 'utf8').trim();
  const hc = await HypercallClient.connect(L.hypervisorSocket, token, { owner: true });
  await hc.call('console_io', 'write', { text: 'dom0: connected' });

  const out = openSync(`${L.logDir}/xenstored.log`, 'a');
  xenstored = spawn(process.execPath, [...processEntry('xenstored'), '--socket', L.xenstoredSocket, '--hypervisor', L.runDir], { stdio: ['ignore', out, out] });
  closeSync(out);
  writeFileSync(L.xenstoredPid, `${xenstored.pid}\n`);
  const xs = await connectXenstored(L.xenstoredSocket, 15_000, xenstored);
  await xs.write('/local/domain/0/name', 'Domain-0');
  await xs.write('/local/domain/0/domid', '0');
  const info = await hc.call('domctl', 'getdomaininfo', { domain: 0 });
  await xs.write('/local/domain/0/memory/target', String(info.tot_pages * 4));
  xs.close();

  // on_poweroff / on_crash for every domain until the toolstack keeps per-domain configs:
  // XENLAB_ON_CRASH / XENLAB_ON_POWEROFF = destroy (xl's default) | preserve.
  const action = (v: string | undefined): ShutdownAction => (v === 'preserve' ? 'preserve' : 'destroy');
  // The toolstack service (xl's peer) and the backends; it applies each domain's own on_* actions.
  const toolstack = await ToolstackService.start({ hc, layout: L, log });
  const reaper = new DomainReaper(hc, { onCrash: action(process.env.XENLAB_ON_CRASH), onPoweroff: action(process.env.XENLAB_ON_POWEROFF), log, handle: (d) => toolstack.onShutdown(d) });
  await reaper.start();

  writeFileSync(L.dom0Pid, `${process.pid}\n`);
  writeFileSync(L.dom0Ready, `${new Date().toISOString()}\n`);
  await hc.call('console_io', 'write', { text: `dom0: xenstored on ${L.xenstoredSocket}` });
  log('ready');

  let stopping = false;
  const stop = async (sig: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log(`${sig}: stopping`);
    reaper.stop();
    await toolstack.stop().catch((e) => log(`toolstack stop: ${(e as Error).message}`));
    await stopChild(xenstored);
    for (const f of [L.dom0Ready, L.dom0Pid, L.xenstoredPid]) rmSync(f, { force: true });
    hc.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  // The hypervisor gone (it crashed or was killed) is the host gone: do not outlive it.
  hc.conn.socket.on('close', () => void stop('the hypervisor went away'));
  xenstored.on('exit', (code, sig) => {
    if (!stopping) log(`xenstored exited unexpectedly (${sig ?? `code ${code}`})`);
  });
}

main().catch(async (e) => {
  process.stderr.write(`dom0: ${(e as Error).stack ?? e}\n`);
  // A start that failed after xenstored was spawned must not leave it running.
  if (xenstored) {
    await stopChild(xenstored, 2000).catch(() => {});
    const L = hostLayout(process.argv.includes('--run-dir') ? process.argv[process.argv.indexOf('--run-dir') + 1] : defaultRunDir());
    rmSync(L.xenstoredPid, { force: true });
  }
  process.exit(1);
});
