/**
 * Cross-process tests: two real processes share a file mapped MAP_SHARED and exchange blkif
 * requests over Xen's ring with doorbells; a hostile front end tries to break the back end.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runPeerPair } from './testing/spawn-peers.ts';
import { SharedMemory } from './shared-memory.ts';
import { futexWait, futexWake, schedYield } from './futex.ts';

describe('blkif ring between two processes', () => {
  it('exchanges 1,000,000 requests and responses, every id and payload checked (hold-off on)', async () => {
    const r = await runPeerPair({ count: 1_000_000, holdOff: true, spinUs: 50, idleTimeoutMs: 20_000, pushEvery: 1 });
    expect(r.front.firstError).toBeUndefined();
    expect(r.back.firstError).toBeUndefined();
    expect(r.back.handled).toBe(1_000_000);
    expect(r.front.handled).toBe(1_000_000);
    expect(r.front.errors + r.back.errors).toBe(0);
    // Hold-off at work: far fewer kicks than requests.
    expect(r.front.kicksSent).toBeLessThan(r.front.pushes);
  });

  it('also works with hold-off off and with full-ring batches', async () => {
    const r = await runPeerPair({ count: 100_000, holdOff: false, spinUs: 0, idleTimeoutMs: 20_000 });
    expect(r.front.errors + r.back.errors).toBe(0);
    expect(r.front.handled).toBe(100_000);
    expect(r.front.kicksSent).toBe(r.front.pushes);
    expect(r.back.sleeps + r.front.sleeps).toBeGreaterThan(0); // spin 0: every wait sleeps on the futex
  });

  it('survives a hostile front end: garbage answered with echoed ids, impossible req_prod reported', async () => {
    const hostile = fileURLToPath(new URL('./testing/hostile-front.ts', import.meta.url));
    const r = await runPeerPair({ count: 1e9, holdOff: true, spinUs: 50, idleTimeoutMs: 20_000, frontScript: hostile });
    const front = r.front as typeof r.front & { idsEchoed: number; garbageAnswered: number };
    expect(front.firstError).toBeUndefined();
    expect(front.idsEchoed).toBe(front.handled);
    expect(front.garbageAnswered).toBeGreaterThan(front.handled * 0.99); // random bytes fail validation
    expect(r.back.broken).toMatch(/more than the ring's 32 entries/);
    expect(r.back.handled).toBe(front.handled);
  });
});

describe('shared memory and futex across processes', () => {
  it('sees writes and Atomics from another process, concurrently, and a futex wake reaches it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xenlab-shm-'));
    const N = 1_000_000;
    try {
      const file = join(dir, 'm');
      const shm = SharedMemory.create(file, 8192);
      const words = new Int32Array(shm.buffer);
      // word 0: child done; word 1: the shared counter; word 2: start barrier; word 3: child ready.
      const child = `
        import { SharedMemory, futexWait, futexWake } from '@xenlab/ring-buffers';
        const m = SharedMemory.open(${JSON.stringify(file)});
        const w = new Int32Array(m.buffer);
        Atomics.store(w, 3, 1); futexWake(w, 3, 1);
        while (Atomics.load(w, 2) === 0) futexWait(w, 2, 0, 1000);
        for (let i = 0; i < ${N}; i++) Atomics.add(w, 1, 1);
        new Uint8Array(m.buffer)[5000] = 42;
        Atomics.store(w, 0, 1);
        futexWake(w, 0, 1);
      `;
      const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', child], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      p.stderr.on('data', (d) => (stderr += d));
      const exited = new Promise<number | null>((res) => p.on('exit', res));
      try {
        // Both processes increment at the same time; a lost update would show in the total.
        for (let t = 0; Atomics.load(words, 3) === 0 && t < 200; t++) await new Promise((r) => setTimeout(r, 50));
        expect(Atomics.load(words, 3), 'child did not start').toBe(1);
        Atomics.store(words, 2, 1);
        futexWake(words, 2, 0);
        for (let i = 0; i < N; i++) Atomics.add(words, 1, 1);
        for (let t = 0; Atomics.load(words, 0) === 0 && t < 100; t++) futexWait(words, 0, 0, 200);
        expect(await exited, stderr).toBe(0);
      } finally {
        p.kill();
      }
      expect(Atomics.load(words, 1)).toBe(2 * N);
      expect(new Uint8Array(shm.buffer)[5000]).toBe(42);
      expect(futexWait(words, 0, 0, 5000)).toBe('not-equal'); // already 1: no sleep
      expect(futexWait(words, 0, 1, 20)).toBe('timed-out');
      shm.close();
      expect(shm.size).toBe(0);
      expect(words.length).toBe(0); // detached on unmap: no access to freed memory
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('schedYield', () => {
  it('is the native sched_yield: returns at once when nothing else wants the core', () => {
    const t = performance.now();
    for (let i = 0; i < 1000; i++) expect(schedYield()).toBeUndefined();
    // Generous: 1000 system calls; this only catches a yield that sleeps (e.g. a usleep stand-in).
    expect(performance.now() - t).toBeLessThan(2000);
  });
});
