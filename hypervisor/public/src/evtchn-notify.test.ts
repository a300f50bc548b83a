import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { EvtchnWaiter, type DoorbellWaitLike } from './evtchn-notify.ts';
import { MarkResult, SharedInfoPage } from './shared-info.ts';

/** A doorbell on a SharedArrayBuffer word (seq at word 0), as @xenlab/ring-buffers' is on a futex. */
function bellOn(sab: SharedArrayBuffer, byteOffset: number): DoorbellWaitLike & { rings: number; waits: number } {
  const w = new Int32Array(sab, byteOffset, 16);
  return {
    rings: 0,
    waits: 0,
    get seq() {
      return Atomics.load(w, 0);
    },
    wait(seen: number, timeoutMs = -1) {
      this.waits++;
      Atomics.wait(w, 0, seen, timeoutMs < 0 ? Infinity : timeoutMs);
      return Atomics.load(w, 0);
    },
  };
}

/**
 * Another thread acting as a sender: after `delayMs`, sets `port` pending on the page at 0 (a
 * plain test-and-set of the pending bit) and, if `ring`, bumps and wakes the doorbell at 4096.
 */
function sender(sab: SharedArrayBuffer, port: number, delayMs: number, ring: boolean): Promise<void> {
  const code = `
    const { workerData } = require('node:worker_threads');
    const { sab, port, delayMs, ring } = workerData;
    const u32 = new Uint32Array(sab, 0, 1024);
    const bell = new Int32Array(sab, 4096, 16);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, delayMs);
    Atomics.or(u32, 512 + (port >>> 5), 1 << (port & 31));
    if (ring) { Atomics.add(bell, 0, 1); Atomics.notify(bell, 0); }
  `;
  const w = new Worker(code, { eval: true, workerData: { sab, port, delayMs, ring } });
  return new Promise((resolve, reject) => {
    w.once('error', reject);
    w.once('exit', () => resolve());
  });
}

function setup() {
  const sab = new SharedArrayBuffer(4096 + 64);
  return { sab, page: new SharedInfoPage(sab, 0), bell: bellOn(sab, 4096) };
}

describe('SharedInfoPage.take / ready', () => {
  it('test-and-clears one unmasked port; leaves masked and other ports pending', () => {
    const page = new SharedInfoPage(new ArrayBuffer(4096), 0);
    expect(page.take(5)).toBe(false);
    page.markPending(0, 5);
    page.markPending(0, 6);
    page.setMask(6, true);
    expect(page.ready(0, (1 << 5) | (1 << 6) | (1 << 7))).toBe(1 << 5);
    expect(page.take(6)).toBe(false);
    expect(page.isPending(6)).toBe(true);
    expect(page.take(5)).toBe(true);
    expect(page.isPending(5)).toBe(false);
    expect(page.take(5)).toBe(false);
    expect(page.ready(0, 1 << 6)).toBe(0);
  });

  it('markPending raises the selector again once the guest has swapped it out', () => {
    const page = new SharedInfoPage(new ArrayBuffer(4096), 0);
    expect(page.markPending(0, 70)).toBe(MarkResult.upcall);
    expect(page.markPending(0, 71)).toBe(MarkResult.newly); // selector bit 1 already set
    expect(page.upcallPending(0)).toBe(1);
    expect(page.scan(0)).toEqual([70, 71]); // clears upcall_pending and the selector
    expect(page.pendingSel(0)).toBe(0n);
    expect(page.markPending(0, 72)).toBe(MarkResult.upcall);
    expect(page.pendingSel(0)).toBe(2n);
    expect(page.upcallPending(0)).toBe(1);
  });
});

describe('EvtchnWaiter (the receiving end of the hot path)', () => {
  it('takes only its own pending unmasked ports', () => {
    const { page, bell } = setup();
    const rx = new EvtchnWaiter(page, bell, [3, 40, 3]);
    for (const p of [3, 4, 40]) page.markPending(0, p);
    page.setMask(40, true);
    expect(rx.poll()).toEqual([3]);
    expect(page.isPending(4)).toBe(true); // someone else's
    expect(page.isPending(40)).toBe(true); // masked: stays pending
    page.setMask(40, false);
    expect(rx.wait(0)).toEqual([40]);
    expect(rx.stats.immediate).toBe(1);
  });

  it('returns [] when the timeout passes, spinning then sleeping on the doorbell', () => {
    const { page, bell } = setup();
    const rx = new EvtchnWaiter(page, bell, [9]);
    page.markPending(0, 9);
    page.setMask(9, true); // pending but masked: a spin hit that takes nothing
    const t0 = performance.now();
    expect(rx.wait(30, 1000)).toEqual([]);
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(29);
    expect(took).toBeLessThan(1000);
    expect(rx.stats.sleeps).toBe(1);
    expect(page.isPending(9)).toBe(true);
  });

  it('while spinning sees the pending bit itself, before any ring', async () => {
    const { sab, page, bell } = setup();
    const rx = new EvtchnWaiter(page, bell, [33]);
    const done = sender(sab, 33, 20, false); // never rings
    // Spin long enough to cover the worker's start-up; the doorbell never moves.
    expect(rx.wait(10_000, 3_000_000)).toEqual([33]);
    expect(rx.stats).toEqual({ immediate: 0, spinHits: 1, sleeps: 0 });
    expect(bell.waits).toBe(0);
    await done;
  });

  it('asleep, is woken by the ring that follows the pending bit', async () => {
    const { sab, page, bell } = setup();
    const rx = new EvtchnWaiter(page, bell, [2]);
    const done = sender(sab, 2, 30, true);
    expect(rx.wait(10_000, 0)).toEqual([2]);
    expect(rx.stats).toEqual({ immediate: 0, spinHits: 0, sleeps: 1 });
    expect(bell.waits).toBeGreaterThanOrEqual(1);
    expect(page.isPending(2)).toBe(false);
    await done;
  });
});
