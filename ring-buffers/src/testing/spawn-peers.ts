/**
 * Starts a blkif front end and back end as two separate processes over one shared file, starts
 * them together, and collects their reports. Bounded: both are killed if they overrun.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRingFile, type PeerOptions, type PeerReport } from './blkif-peers.ts';

const PEER = fileURLToPath(new URL('./blkif-peers.ts', import.meta.url));

export interface PairResult {
  front: PeerReport;
  back: PeerReport;
  wallMs: number;
}

export async function runPeerPair(
  opts: Omit<PeerOptions, 'file'> & {
    frontScript?: string;
    deadlineMs?: number;
    /** Run front and back on these cores (taskset), as a benchmark does for stable numbers. */
    pinCores?: [number, number];
  },
): Promise<PairResult> {
  const dir = mkdtempSync(join(tmpdir(), 'xenlab-ring-'));
  const file = join(dir, 'ring.shm');
  createRingFile(file);
  const args = (role: string) => [
    '--import',
    'tsx',
    role === 'front' && opts.frontScript ? opts.frontScript : PEER,
    role,
    file,
    String(opts.count),
    opts.holdOff ? '1' : '0',
    String(opts.spinUs),
    String(opts.idleTimeoutMs),
    String(opts.pushEvery ?? 0),
  ];
  const start = (role: 'front' | 'back') => {
    const core = opts.pinCores?.[role === 'front' ? 0 : 1];
    return core === undefined
      ? spawn(process.execPath, args(role), { stdio: ['pipe', 'pipe', 'inherit'] })
      : spawn('taskset', ['-c', String(core), process.execPath, ...args(role)], { stdio: ['pipe', 'pipe', 'inherit'] });
  };
  const front = start('front');
  const back = start('back');
  const deadline = setTimeout(() => {
    front.kill('SIGKILL');
    back.kill('SIGKILL');
  }, opts.deadlineMs ?? 120_000);
  try {
    const fl = lines(front);
    const bl = lines(back);
    if ((await fl.next()) !== 'ready' || (await bl.next()) !== 'ready') throw new Error('ring peers did not start');
    const t0 = performance.now();
    back.stdin!.write('go\n');
    front.stdin!.write('go\n');
    const [f, b] = await Promise.all([fl.next(), bl.next()]);
    const wallMs = performance.now() - t0;
    if (!f || !b) throw new Error(`ring peer died without a report (front: ${f ? 'ok' : 'none'}, back: ${b ? 'ok' : 'none'})`);
    return { front: JSON.parse(f) as PeerReport, back: JSON.parse(b) as PeerReport, wallMs };
  } finally {
    clearTimeout(deadline);
    front.kill();
    back.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Reads a child's stdout line by line; next() resolves null at end of stream. */
function lines(child: ChildProcess): { next(): Promise<string | null> } {
  let buf = '';
  const queue: string[] = [];
  const waiters: Array<(l: string | null) => void> = [];
  let ended = false;
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const l = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const w = waiters.shift();
      if (w) w(l);
      else queue.push(l);
    }
  });
  const end = () => {
    ended = true;
    for (const w of waiters.splice(0)) w(null);
  };
  child.stdout!.on('end', end);
  child.on('exit', end);
  return {
    next: () =>
      new Promise((res) => {
        const l = queue.shift();
        if (l !== undefined) res(l);
        else if (ended) res(null);
        else waiters.push(res);
      }),
  };
}
