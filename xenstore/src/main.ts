/**
 * `npx xenstored --socket <path> [--ro-socket <path>] [--ring-dir <dir>] [--quota name=value]... [--verbose]`
 *
 * `--ring-dir` stands in for the hypervisor until it maps guest pages for us: XS_INTRODUCE of
 * domain d attaches the ring file `<dir>/domain-<d>.xsring` (see GuestRingFile);
 * `--ring-spin-us N` watches a ring's doorbell for N µs after each kick before sleeping.
 *
 * Runs xenstored in the foreground, logging to stderr, until SIGTERM or SIGINT. Inside a host,
 * dom0 starts it; standalone it serves tools and tests (point `XENSTORED_PATH` at the socket).
 */
import { Xenstored } from './xenstored.ts';
import { SocketServer } from './socket-server.ts';
import { isQuotaName, type Quotas } from './quota.ts';
import { ringFileAttacher } from './ring-connection.ts';
import { hypervisorRings, type HypervisorRings } from './hypervisor-rings.ts';

function usage(msg?: string): never {
  if (msg) process.stderr.write(`xenstored: ${msg}\n`);
  process.stderr.write('usage: xenstored --socket <path> [--ro-socket <path>] [--ring-dir <dir> [--ring-spin-us N] | --hypervisor <run-dir>] [--quota name=value]... [--verbose]\n');
  process.exit(msg ? 2 : 0);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  let socket: string | undefined;
  let roSocket: string | undefined;
  let ringDir: string | undefined;
  let hvRunDir: string | undefined;
  let ringSpinUs = 0;
  let verbose = false;
  const quotas: Partial<Quotas> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--socket') socket = argv[++i] ?? usage('--socket needs a path');
    else if (a === '--ro-socket') roSocket = argv[++i] ?? usage('--ro-socket needs a path');
    else if (a === '--ring-dir') ringDir = argv[++i] ?? usage('--ring-dir needs a directory');
    else if (a === '--hypervisor') hvRunDir = argv[++i] ?? usage('--hypervisor needs the host run directory');
    else if (a === '--ring-spin-us') ringSpinUs = Number(argv[++i] ?? usage('--ring-spin-us needs a number'));
    else if (a === '--verbose' || a === '-v') verbose = true;
    else if (a === '--quota') {
      const [k, v] = (argv[++i] ?? '').split('=');
      if (!k || !isQuotaName(k) || !v || !/^[0-9]+$/.test(v)) usage(`bad --quota ${JSON.stringify(argv[i])} (name=value, names: maxNodes, maxWatches, ...)`);
      quotas[k] = Number(v);
    } else if (a === '--help' || a === '-h') usage();
    else usage(`unknown argument ${JSON.stringify(a)}`);
  }
  if (!socket) usage('--socket is required');
  const log = (line: string): void => {
    process.stderr.write(`xenstored: ${line}\n`);
  };
  // --hypervisor RUN_DIR: guest rings are mapped through the host's hypervisor (grant ref 1 and
  // the domain's xenstore event channel); --ring-dir is the file stand-in for tests without one.
  const hv: HypervisorRings | undefined = hvRunDir ? await hypervisorRings(hvRunDir, log) : undefined;
  const attachRing = hv ? hv.attacher : ringDir ? ringFileAttacher(ringDir, ringSpinUs) : undefined;
  const xs = new Xenstored({ quotas, log, ...(attachRing ? { attachRing } : {}) });
  const servers: SocketServer[] = [];
  try {
    servers.push(await SocketServer.listen(xs, socket));
    if (roSocket) servers.push(await SocketServer.listen(xs, roSocket, { readOnly: true }));
  } catch (e) {
    log(`cannot listen on ${socket}: ${(e as Error).message} (is another xenstored using it, or is the directory missing?)`);
    process.exit(1);
  }
  log(`listening on ${socket}${roSocket ? ` and ${roSocket} (read-only)` : ''}`);
  let stopping = false;
  const stop = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    log(`${sig}: shutting down`);
    xs.close();
    Promise.all([...servers.map((s) => s.close()), hv?.close()]).then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  if (verbose) setInterval(() => log(`stats ${JSON.stringify(xs.stats)}`), 10_000).unref();
}

main().catch((e) => {
  process.stderr.write(`xenstored: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
