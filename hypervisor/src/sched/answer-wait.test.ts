/**
 * waitForAnswer: the pCPU worker's bounded spin-then-sleep wait for an answer in shared memory
 * (the trap slot's and the ioreq's). Bounds are checked loosely: what a loaded machine adds.
 */
import { Worker } from 'node:worker_threads';
import { Doorbell } from '@xenlab/ring-buffers';
import { describe, expect, it } from 'vitest';
import { waitForAnswer } from './answer-wait.ts';

const bellOn = (sab: SharedArrayBuffer) => Doorbell.init(sab as unknown as ArrayBuffer, 64);
/** Another thread sets word 0 of `sab` to 1 after `ms` (and rings nothing). */
const answerLater = (sab: SharedArrayBuffer, ms: number): Worker =>
  new Worker(
    `const { workerData } = require('node:worker_threads');
     Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ${ms});
     Atomics.store(new Int32Array(workerData, 0, 1), 0, 1);`,
    { eval: true, workerData: sab },
  );

describe('waitForAnswer', () => {
  it('an answer already there: true at once, without sleeping', () => {
    const bell = bellOn(new SharedArrayBuffer(128));
    expect(waitForAnswer(() => true, bell, bell.seq, { spinUs: 0, waitUs: 1_000_000, napMs: Infinity }, () => false)).toBe(true);
    expect(bell.counters.sleeps).toBe(0);
  });

  it('no answer: false once the wait is over, after spinning first then sleeping on the doorbell', () => {
    const bell = bellOn(new SharedArrayBuffer(128));
    let looks = 0;
    const t0 = performance.now();
    expect(waitForAnswer(() => (looks++, false), bell, bell.seq, { spinUs: 2_000, waitUs: 30_000, napMs: 5 }, () => false)).toBe(false);
    const ms = performance.now() - t0;
    expect(ms).toBeGreaterThanOrEqual(29);
    expect(ms).toBeLessThan(5_000);
    expect(looks).toBeGreaterThan(64); // it spun
    expect(bell.counters.sleeps).toBeGreaterThan(0); // then slept
  });

  it('giveUp (the slice preempted) ends the wait after the spin, well before the deadline', () => {
    const bell = bellOn(new SharedArrayBuffer(128));
    const t0 = performance.now();
    expect(waitForAnswer(() => false, bell, bell.seq, { spinUs: 100, waitUs: 10_000_000, napMs: Infinity }, () => true)).toBe(false);
    expect(performance.now() - t0).toBeLessThan(5_000);
  });

  it('in the yield phase it keeps looking, with the core yielded, and takes an answer without sleeping', async () => {
    const sab = new SharedArrayBuffer(128);
    const bell = bellOn(sab);
    const flag = new Int32Array(sab, 0, 1);
    const w = answerLater(sab, 10);
    const got = waitForAnswer(() => Atomics.load(flag, 0) === 1, bell, bell.seq, { spinUs: 0, yieldUs: 10_000_000, waitUs: 20_000_000, napMs: Infinity }, () => false);
    await w.terminate();
    expect(got).toBe(true);
    expect(bell.counters.sleeps).toBe(0);
  });

  it('an answer another thread posts while it sleeps is taken (true), well before the deadline', async () => {
    const sab = new SharedArrayBuffer(128);
    const bell = bellOn(sab);
    const flag = new Int32Array(sab, 0, 1);
    const w = answerLater(sab, 20);
    const t0 = performance.now();
    const got = waitForAnswer(() => Atomics.load(flag, 0) === 1, bell, bell.seq, { spinUs: 0, waitUs: 10_000_000, napMs: 2 }, () => false);
    const ms = performance.now() - t0;
    await w.terminate();
    expect(got).toBe(true);
    expect(ms).toBeLessThan(5_000);
  });
});
