/**
 * AwakeWindow: while open, the event loop keeps turning (a pending setImmediate) instead of
 * blocking; it closes by itself at its deadline, and a window of 0 never opens.
 */
import { describe, expect, it } from 'vitest';
import { AwakeWindow, envMicros, lookEachTurn } from './awake.ts';

describe('AwakeWindow', () => {
  it('keeps the loop turning until the deadline, then closes by itself; extending moves the deadline', async () => {
    const w = new AwakeWindow(20_000);
    w.extend();
    expect(w.open).toBe(true);
    await new Promise((r) => setTimeout(r, 5));
    expect(w.looks).toBeGreaterThan(0);
    w.extend(5_000_000); // a later deadline (5 s: far beyond anything a loaded machine adds)
    await new Promise((r) => setTimeout(r, 40));
    expect(w.open).toBe(true); // would have closed at 20 ms without the extension
    w.close();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(w.open).toBe(false);
    const looks = w.looks;
    await new Promise((r) => setTimeout(r, 5));
    expect(w.looks).toBe(looks); // closed: nothing runs
  });

  it('a window of 0 (the knob turned off) never opens', async () => {
    const w = new AwakeWindow(0);
    w.extend();
    expect(w.open).toBe(false);
    await new Promise((r) => setTimeout(r, 2));
    expect(w.looks).toBe(0);
  });

  it('lookEachTurn: one look per turn of the loop, never within the caller\'s turn; true when done, false when the window closes', async () => {
    let looks = 0;
    // Done after the 5th look.
    const p = lookEachTurn(() => looks >= 5, () => true, () => looks++);
    expect(looks).toBe(0); // the first look is a turn later
    expect(await p).toBe(true);
    expect(looks).toBe(5);
    let open = 3;
    let looked = 0;
    expect(await lookEachTurn(() => false, () => open-- > 0, () => looked++)).toBe(false);
    expect(looked).toBe(3);
    // Already done: true at the first look, no yield, no further look.
    let n = 0;
    expect(await lookEachTurn(() => true, () => true, () => n++)).toBe(true);
    expect(n).toBe(0);
  });

  it('reads µs knobs from the environment, refusing nonsense', () => {
    process.env.XENLAB_TEST_US = '250';
    expect(envMicros('XENLAB_TEST_US', 7)).toBe(250);
    process.env.XENLAB_TEST_US = '-3';
    expect(envMicros('XENLAB_TEST_US', 7)).toBe(7);
    process.env.XENLAB_TEST_US = 'soon';
    expect(envMicros('XENLAB_TEST_US', 7)).toBe(7);
    process.env.XENLAB_TEST_US = '1e9';
    expect(envMicros('XENLAB_TEST_US', 7)).toBe(10_000);
    delete process.env.XENLAB_TEST_US;
    expect(envMicros('XENLAB_TEST_US', 7)).toBe(7);
  });
});
