import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Doorbell } from './doorbell.ts';
import { SharedMemory } from './shared-memory.ts';

describe('doorbell in one process', () => {
  it('returns at once when the sequence already moved, and on timeout returns the same seq', () => {
    const bell = Doorbell.init(new ArrayBuffer(64), 0);
    bell.ring();
    expect(bell.wait(0)).toBe(1);
    const t0 = performance.now();
    expect(bell.wait(1, 30, 10)).toBe(1);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
    expect(bell.counters.sleeps).toBe(1);
  });

  it('skips the wake system call when nobody sleeps', () => {
    const bell = Doorbell.init(new ArrayBuffer(128), 64);
    for (let i = 0; i < 10; i++) bell.ring();
    expect(bell.counters).toMatchObject({ rings: 10, wakeSyscalls: 0 });
    expect(bell.seq).toBe(10);
  });

  it('rejects misaligned or out-of-range placement', () => {
    expect(() => new Doorbell(new ArrayBuffer(128), 32)).toThrow(/aligned/);
    expect(() => new Doorbell(new ArrayBuffer(64), 64)).toThrow(/outside/);
  });

  it('waitAsync resolves on timeout without blocking the event loop', async () => {
    const bell = Doorbell.init(new ArrayBuffer(64), 0);
    let ticks = 0;
    const iv = setInterval(() => ticks++, 5);
    const s = await bell.waitAsync(0, 60);
    clearInterval(iv);
    expect(s).toBe(0);
    expect(ticks).toBeGreaterThan(3);
  });
});

describe('doorbell across processes', () => {
  it('wakes a sleeping peer (with the wake syscall) and a spinning one (without)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xenlab-bell-'));
    const file = join(dir, 'bells');
    const shm = SharedMemory.create(file, 4096);
    const toPeer = Doorbell.init(shm.buffer, 0);
    const fromPeer = Doorbell.init(shm.buffer, 64);
    // The peer: wait (sleeping, spin 0) for ring 1, answer; wait (spinning 2 s) for ring 2, answer.
    const code = `
      import { SharedMemory, Doorbell } from '@xenlab/ring-buffers';
      const m = SharedMemory.open(${JSON.stringify(file)});
      const inb = new Doorbell(m.buffer, 0), outb = new Doorbell(m.buffer, 64);
      let s = inb.wait(0, 10000, 0); outb.ring();
      s = inb.wait(s, 10000, 2000000); outb.ring();
      console.log(JSON.stringify(inb.counters));
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((res) => child.on('exit', res));
    try {
      // Wait (bounded) until the peer announces it sleeps, then ring: the wake syscall is needed.
      const deadline = Date.now() + 20_000;
      while (!toPeer.sleeping && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
      expect(toPeer.sleeping).toBe(true);
      toPeer.ring();
      expect(toPeer.counters.wakeSyscalls).toBe(1);
      expect(fromPeer.wait(0, 20_000, 0)).toBe(1);
      // Now the peer spins: ring without a syscall.
      toPeer.ring();
      expect(fromPeer.wait(1, 20_000)).toBe(2);
      expect(await exited).toBe(0);
      const peer = JSON.parse(out);
      // The first wait slept and needed the one wake syscall; the second (spinning for up to 2 s)
      // saw the ring while spinning or before it began, and cost no syscall.
      expect(peer.sleeps).toBe(1);
      expect(peer.spinHits + peer.immediate).toBe(1);
      expect(toPeer.counters.wakeSyscalls).toBe(1);
    } finally {
      child.kill();
      shm.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
