/**
 * blkfront and blkback in two processes over one MAP_SHARED file, kicking each other through
 * doorbells: sequential 32 KiB reads of a whole image and random 4 KiB reads, many in flight,
 * every byte sampled against the image's pattern. Prints the throughput beside the host's own
 * reads of the same file (the grant copy is the in-memory test double; see pv-blk-peer.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createPeerFile, patternByte, WARMUP } from './pv-blk-peer.ts';

const PEER = fileURLToPath(new URL('./pv-blk-peer.ts', import.meta.url));
const SECTORS = 32768; // 16 MiB

function start(args: string[]): { child: ChildProcess; line: () => Promise<string> } {
  const child = spawn(process.execPath, ['--import', 'tsx', PEER, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let buf = '';
  const waiting: Array<(l: string) => void> = [];
  const lines: string[] = [];
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i; (i = buf.indexOf('\n')) >= 0; ) {
      const l = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const w = waiting.shift();
      if (w) w(l);
      else lines.push(l);
    }
  });
  child.on('exit', () => waiting.splice(0).forEach((w) => w('')));
  return { child, line: () => (lines.length ? Promise.resolve(lines.shift()!) : new Promise((r) => waiting.push(r))) };
}

describe('PV block device across two processes', () => {
  it('reads a whole image and random blocks through blkfront -> ring -> blkback, data intact', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pv-blk-'));
    const file = join(dir, 'shared');
    const image = join(dir, 'disk.img');
    const bytes = new Uint8Array(SECTORS * 512);
    for (let i = 0; i < bytes.length; i++) bytes[i] = patternByte(i);
    writeFileSync(image, bytes);
    createPeerFile(file);

    const back = start(['back', file, image]);
    const front = start(['front', file, String(SECTORS), '16', '20000']);
    const killer = setTimeout(() => {
      back.child.kill('SIGKILL');
      front.child.kill('SIGKILL');
    }, 90_000);
    try {
      expect(await back.line()).toBe('ready');
      const f = JSON.parse(await front.line());
      const b = JSON.parse(await back.line());
      expect(f.errors).toEqual([]);
      expect(b.stopped).toBeNull();
      expect(b.counters.errors).toBe(0);
      expect(b.counters.requests).toBe(f.counters.requests);
      expect(f.counters.requests).toBe(WARMUP + SECTORS / 64 + 20000);
      expect(f.grants.granted).toBe(f.grants.ended);

      // The host reading the same file, same sizes, for scale.
      const fd = openSync(image, 'r');
      const chunk = Buffer.alloc(32768);
      let t0 = performance.now();
      for (let off = 0; off < bytes.length; off += chunk.length) readSync(fd, chunk, 0, chunk.length, off);
      const hostSeq = bytes.length / 2 ** 20 / ((performance.now() - t0) / 1000);
      const small = Buffer.alloc(4096);
      let seed = 12345;
      t0 = performance.now();
      for (let i = 0; i < 20000; i++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        readSync(fd, small, 0, 4096, (seed % (SECTORS / 8)) * 4096);
      }
      const hostIops = 20000 / ((performance.now() - t0) / 1000);
      closeSync(fd);
      console.log(
        `pv-blk across processes: seq 32 KiB ${f.seqMiBps.toFixed(0)} MiB/s (host ${hostSeq.toFixed(0)}), ` +
          `random 4 KiB ${f.randIops.toFixed(0)} IOPS (host ${hostIops.toFixed(0)}); ` +
          `kicks to back ${f.counters.notificationsSent}/${f.counters.pushes} pushes, to front ${b.counters.notificationsSent}/${b.counters.requests} responses`,
      );
    } finally {
      clearTimeout(killer);
      back.child.kill();
      front.child.kill();
    }
  }, 120_000);
});
