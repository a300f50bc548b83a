/**
 * `npm run bench -- xenstore [--quick]`: xenstored against same-run baselines (issue 3).
 *
 *   rtt.read / rtt.write    one request at a time over the unix socket, against a plain
 *                           unix-socket ping-pong peer replying with frames of the same sizes
 *                           (xenstore/src/bench/peers.ts); target: under 1.10x
 *   pipelined               requests kept in flight (window 64) by 1 and 8 clients, 80% READ /
 *                           20% WRITE; target: at least 100,000 operations per second
 *   transactions            START, READ, WRITE, END(T) loops by 4 clients, on private keys (no
 *                           conflicts) and on one shared key (conflicts, retried)
 *   rtt.ring                a guest's READ over the xenstore ring page with doorbells, against
 *                           the doorbell round trip alone (a peer waiting the way xenstored
 *                           waits, the guest sleeping on the futex in both); target: within 2x
 *
 * Every daemon and peer is its own process; the clients run in this one. Rounds alternate
 * baseline and subject so machine noise hits both.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { XsType, encodeMessage } from '@xenlab/xen-public';
import { GuestRingFile, XenstoreClient, XenstoreError } from '@xenlab/xenstore-client';
import { stats, type BenchResult } from './suite.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const XENSTORED = join(ROOT, 'xenstore', 'bin', 'xenstored.mjs');
const PEERS = join(ROOT, 'xenstore', 'src', 'bench', 'peers.ts');

interface Proc {
  child: ChildProcess;
  stop(): Promise<void>;
}

function startProc(args: string[], ready: RegExp, what: string): Promise<Proc> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
  let out = '';
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  return new Promise((resolveP, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`bench xenstore: ${what} did not start within 30 s:\n${out}`));
    }, 30_000);
    const onData = (b: Buffer): void => {
      out += b.toString();
      if (ready.test(out)) {
        clearTimeout(timer);
        resolveP({
          child,
          async stop() {
            child.kill('SIGTERM');
            const t = setTimeout(() => child.kill('SIGKILL'), 5000);
            await exited;
            clearTimeout(t);
          },
        });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`bench xenstore: ${what} exited (${code}) before it was ready:\n${out}`));
    });
  });
}

function connectRaw(path: string): Promise<Socket> {
  return new Promise((res, rej) => {
    const s = connect(path, () => {
      s.setNoDelay(true);
      res(s);
    });
    s.once('error', rej);
  });
}

/**
 * Sends `frame` and waits for one whole reply, `n` times in a row; returns µs per round trip.
 * The same loop drives the daemon and the baseline peer.
 */
function pingPong(sock: Socket, frame: Uint8Array, n: number): Promise<number> {
  return new Promise((res) => {
    let left = n;
    let buf: Buffer = Buffer.alloc(0);
    const t0 = process.hrtime.bigint();
    const onData = (chunk: Buffer): void => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      while (buf.length >= 16 && buf.length >= 16 + buf.readUInt32LE(12)) {
        buf = buf.subarray(16 + buf.readUInt32LE(12));
        if (--left === 0) {
          sock.off('data', onData);
          res(Number(process.hrtime.bigint() - t0) / 1000 / n);
          return;
        }
        sock.write(frame);
      }
    };
    sock.on('data', onData);
    sock.write(frame);
  });
}

/** Keeps `window` requests in flight on each socket for `ms`; returns completed ops per second. */
function pipelined(socks: Socket[], frames: Uint8Array[], window: number, ms: number): Promise<number> {
  return new Promise((res) => {
    let done = 0;
    let stopped = false;
    let open = socks.length;
    const t0 = process.hrtime.bigint();
    const deadline = Date.now() + ms;
    for (const [k, sock] of socks.entries()) {
      let inflight = 0;
      let i = k;
      let buf: Buffer = Buffer.alloc(0);
      const send = (count: number): void => {
        if (count <= 0) return;
        const batch: Uint8Array[] = [];
        for (let j = 0; j < count; j++) batch.push(frames[i++ % frames.length]!);
        inflight += count;
        sock.write(Buffer.concat(batch));
      };
      const onData = (chunk: Buffer): void => {
        buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
        let got = 0;
        while (buf.length >= 16 && buf.length >= 16 + buf.readUInt32LE(12)) {
          buf = buf.subarray(16 + buf.readUInt32LE(12));
          got++;
        }
        inflight -= got;
        if (!stopped) done += got;
        if (!stopped && Date.now() >= deadline) stopped = true;
        if (!stopped) send(got);
        if (stopped && inflight === 0) {
          sock.off('data', onData);
          if (--open === 0) res(done / (Number(process.hrtime.bigint() - t0) / 1e9));
        }
      };
      sock.on('data', onData);
      send(window);
    }
  });
}

async function txLoop(clients: XenstoreClient[], key: (i: number) => string, ms: number): Promise<{ commits: number; conflicts: number; perSecond: number }> {
  let commits = 0;
  let conflicts = 0;
  const t0 = Date.now();
  await Promise.all(
    clients.map(async (c, i) => {
      while (Date.now() - t0 < ms) {
        const tx = await c.transactionStart();
        const v = Number(await tx.readString(key(i)));
        await tx.write(key(i), String(v + 1));
        try {
          await tx.commit();
          commits++;
        } catch (e) {
          if (!(e instanceof XenstoreError && e.code === 'EAGAIN')) throw e;
          conflicts++;
        }
      }
    }),
  );
  return { commits, conflicts, perSecond: commits / ((Date.now() - t0) / 1000) };
}

/**
 * The guest blocks on the futex without spinning. (With a spinning guest, a peer that answers
 * within the microsecond it takes to re-check its bell never sleeps, so the baseline would
 * measure a race rather than the notification; and two spinners on this shared 2-core machine
 * only slow each other down.)
 */
const GUEST_SPIN_US = 0;

/** One request over the ring with synchronous doorbell waits; returns µs per round trip. */
function ringPingPong(file: GuestRingFile, frame: Uint8Array, n: number): number {
  const { toServer, toGuest } = file.doorbells;
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < n; k++) {
    let seen = toGuest.seq;
    if (file.ring.writeRequest(frame) !== frame.length) throw new Error('bench xenstore: request ring full');
    toServer.ring();
    let have = 0;
    let need = Infinity;
    const head = new Uint8Array(16);
    for (;;) {
      const got = file.ring.readResponse();
      if (got === null) throw new Error('bench xenstore: response ring indices broken');
      for (const b of got) {
        if (have < 16) head[have] = b;
        have++;
      }
      if (need === Infinity && have >= 16) need = 16 + new DataView(head.buffer).getUint32(12, true);
      if (have >= need) break;
      seen = toGuest.wait(seen, 5000, GUEST_SPIN_US);
    }
  }
  return Number(process.hrtime.bigint() - t0) / 1000 / n;
}

function doorbellPingPong(file: GuestRingFile, n: number): number {
  const { toServer, toGuest } = file.doorbells;
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < n; k++) {
    const seen = toGuest.seq;
    toServer.ring();
    if (toGuest.wait(seen, 5000, GUEST_SPIN_US) === seen) throw new Error('bench xenstore: doorbell peer did not answer');
  }
  return Number(process.hrtime.bigint() - t0) / 1000 / n;
}

const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;

export async function run(argv: string[]): Promise<BenchResult> {
  const quick = argv.includes('--quick');
  const rounds = quick ? 5 : 15;
  const perRound = quick ? 300 : 1000;
  const tputMs = quick ? 500 : 1500;
  const dir = mkdtempSync(join(tmpdir(), 'bench-xenstore-'));
  const step = (what: string): void => {
    process.stderr.write(`bench xenstore: ${what}\n`);
  };
  const procs: Proc[] = [];
  const clients: XenstoreClient[] = [];
  const socks: Socket[] = [];
  // If the run is interrupted, take the daemon and the peers down with it.
  const killAll = (): void => {
    for (const p of procs) p.child.kill('SIGKILL');
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    killAll();
    rmSync(dir, { recursive: true, force: true });
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.on('exit', killAll);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const xsPath = join(dir, 'socket');
    procs.push(await startProc([XENSTORED, '--socket', xsPath, '--ring-dir', dir], /listening on/, 'xenstored'));
    const dom0 = await XenstoreClient.connect(xsPath);
    clients.push(dom0);
    const value = 'v'.repeat(16);
    await dom0.write('/bench/key', value);
    for (let i = 0; i < 100; i++) await dom0.write(`/bench/p/${i}`, value);

    const readReq = encodeMessage(XsType.READ, 0, 0, '/bench/key\0');
    const writeReq = encodeMessage(XsType.WRITE, 0, 0, `/bench/key\0${value}`);
    const readReplyBytes = 16 + value.length;
    const writeReplyBytes = 16 + 3;
    const echoRead = join(dir, 'echo-read');
    const echoWrite = join(dir, 'echo-write');
    procs.push(await startProc(['--import', 'tsx', PEERS, 'socket-echo', echoRead, String(readReplyBytes)], /ready/, 'socket echo peer'));
    procs.push(await startProc(['--import', 'tsx', PEERS, 'socket-echo', echoWrite, String(writeReplyBytes)], /ready/, 'socket echo peer'));

    step('socket round trips');
    // --- Round trips over the socket ---------------------------------------------------------------
    const dsock = await connectRaw(xsPath);
    const bRead = await connectRaw(echoRead);
    const bWrite = await connectRaw(echoWrite);
    socks.push(dsock, bRead, bWrite);
    await pingPong(dsock, readReq, perRound);
    await pingPong(bRead, readReq, perRound);
    const s = { baseRead: [] as number[], read: [] as number[], baseWrite: [] as number[], write: [] as number[] };
    for (let r = 0; r < rounds; r++) {
      s.baseRead.push(await pingPong(bRead, readReq, perRound));
      s.read.push(await pingPong(dsock, readReq, perRound));
      s.baseWrite.push(await pingPong(bWrite, writeReq, perRound));
      s.write.push(await pingPong(dsock, writeReq, perRound));
    }
    const rtt = Object.fromEntries(Object.entries(s).map(([k, v]) => [k, stats(v)]));
    const readRatio = rtt.read!.median / rtt.baseRead!.median;
    const writeRatio = rtt.write!.median / rtt.baseWrite!.median;

    step('pipelined throughput');
    // --- Pipelined throughput ---------------------------------------------------------------------
    const mix: Uint8Array[] = [];
    for (let i = 0; i < 100; i++) {
      mix.push(i % 5 === 4 ? encodeMessage(XsType.WRITE, 0, 0, `/bench/p/${i}\0${value}`) : encodeMessage(XsType.READ, 0, 0, `/bench/p/${i}\0`));
    }
    const eight = await Promise.all(Array.from({ length: 8 }, () => connectRaw(xsPath)));
    socks.push(...eight);
    await pipelined([dsock], mix, 64, 200);
    const tput1 = await pipelined([dsock], mix, 64, tputMs);
    const tput8 = await pipelined(eight, mix, 64, tputMs);
    const tputBase = await pipelined([bRead], [readReq], 64, tputMs);

    step('transactions');
    // --- Transactions -------------------------------------------------------------------------------
    const txClients = await Promise.all(Array.from({ length: 4 }, () => XenstoreClient.connect(xsPath)));
    clients.push(...txClients);
    for (let i = 0; i < 4; i++) await dom0.write(`/bench/tx/${i}`, '0');
    await dom0.write('/bench/tx/shared', '0');
    const txFree = await txLoop(txClients, (i) => `/bench/tx/${i}`, tputMs);
    const txShared = await txLoop(txClients, () => '/bench/tx/shared', tputMs);

    step('guest ring round trips');
    // --- The guest ring -----------------------------------------------------------------------------
    const guestFile = GuestRingFile.create(join(dir, 'domain-5.xsring'));
    await dom0.mkdir('/local/domain/5');
    await dom0.setPerms('/local/domain/5', ['n5']);
    await dom0.write('/local/domain/5/name', value);
    await dom0.introduceDomain(5, 0, 1);
    const echoFile = GuestRingFile.create(join(dir, 'doorbell-echo.xsring'));
    procs.push(await startProc(['--import', 'tsx', PEERS, 'doorbell-echo', echoFile.shm.path], /ready/, 'doorbell echo peer'));
    const ringReq = encodeMessage(XsType.READ, 0, 0, 'name\0');
    ringPingPong(guestFile, ringReq, perRound);
    doorbellPingPong(echoFile, perRound);
    const rs = { doorbell: [] as number[], ring: [] as number[] };
    for (let r = 0; r < rounds; r++) {
      rs.doorbell.push(doorbellPingPong(echoFile, perRound));
      rs.ring.push(ringPingPong(guestFile, ringReq, perRound));
    }
    const ringStats = { doorbell: stats(rs.doorbell), ring: stats(rs.ring) };
    const ringRatio = ringStats.ring.median / ringStats.doorbell.median;
    const daemonStats = await dom0.control('stats');

    const targets = {
      'read round trip vs socket ping-pong': { target: '< 1.10x', measured: round(readRatio, 3), met: readRatio < 1.1 },
      'write round trip vs socket ping-pong': { target: '< 1.10x', measured: round(writeRatio, 3), met: writeRatio < 1.1 },
      'pipelined ops/s, 1 client': { target: '>= 100000', measured: Math.round(tput1), met: tput1 >= 100_000 },
      'pipelined ops/s, 8 clients': { target: '>= 100000', measured: Math.round(tput8), met: tput8 >= 100_000 },
      'ring round trip vs doorbell round trip': { target: '<= 2x', measured: round(ringRatio, 3), met: ringRatio <= 2 },
    };
    const us = (x: number): string => `${round(x, 1)} µs`;
    const summary = [
      `xenstore (${quick ? 'quick' : 'full'}: ${rounds} rounds x ${perRound} round trips; medians)`,
      `  READ  round trip ${us(rtt.read!.median)} vs socket ping-pong ${us(rtt.baseRead!.median)}: ${round(readRatio, 3)}x`,
      `  WRITE round trip ${us(rtt.write!.median)} vs socket ping-pong ${us(rtt.baseWrite!.median)}: ${round(writeRatio, 3)}x`,
      `  pipelined: 1 client ${Math.round(tput1)} ops/s, 8 clients ${Math.round(tput8)} ops/s (echo peer, 1 client: ${Math.round(tputBase)} ops/s; ratio ${round(tput1 / tputBase, 3)})`,
      `  transactions, 4 clients: ${Math.round(txFree.perSecond)} commits/s without conflicts; ${Math.round(txShared.perSecond)} commits/s on one key (${txShared.conflicts} EAGAIN for ${txShared.commits} commits)`,
      `  guest ring READ round trip ${us(ringStats.ring.median)} vs doorbell round trip ${us(ringStats.doorbell.median)}: ${round(ringRatio, 3)}x`,
      ...Object.entries(targets).map(([k, t]) => `  [${t.met ? 'met' : 'MISSED'}] ${k}: ${t.measured} (target ${t.target})`),
    ].join('\n');
    return {
      summary,
      measurements: {
        rttMicroseconds: { unit: 'µs per round trip', baseline: 'socket-echo peer, same frame sizes', ...rtt },
        pipelined: { unit: 'ops/s', window: 64, mix: '80% READ, 20% WRITE', oneClient: tput1, eightClients: tput8, baselineEchoOneClient: tputBase },
        transactions: { unit: 'commits/s', clients: 4, noConflicts: txFree, oneSharedKey: txShared },
        ringMicroseconds: { unit: 'µs per round trip', baseline: 'doorbell-echo peer (event-loop futex wait, as xenstored waits); the guest sleeps on the futex without spinning', ...ringStats },
        daemon: JSON.parse(daemonStats),
      },
      targets,
    };
  } finally {
    process.off('exit', killAll);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const s of socks) s.destroy();
    for (const c of clients) c.close();
    await Promise.all(procs.map((p) => p.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}
