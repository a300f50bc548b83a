/**
 * DomainEvents on a real shared-memory doorbell and shared_info page (no hypervisor: the test
 * plays the sender's part, marking a port pending and ringing the bell as EvtchnNotifier does).
 * Checks delivery, the busy-poll window after activity (an event inside it costs no futex
 * sleep) and the sleeping path after the window closes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Doorbell, SharedMemory } from '@xenlab/ring-buffers';
import { SharedInfoPage, type HypercallClient } from '@xenlab/xen-public';
import { DomainEvents, PollWindow } from './domain-events.ts';

const PAGE = 4096;
const PORT = 5;

describe('DomainEvents', () => {
  let dir: string;
  let mm: SharedMemory;
  let events: DomainEvents | undefined;
  let bell: Doorbell;
  let shared: SharedInfoPage;
  const hc = { info: { doorbell_addr: 0, shared_info_frame: 1 }, call: async () => ({}) } as unknown as HypercallClient;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'xenlab-domain-events-'));
    mm = SharedMemory.create(join(dir, 'mem'), 2 * PAGE);
    bell = Doorbell.init(mm.buffer as ArrayBuffer, 0);
    shared = new SharedInfoPage(mm.buffer, PAGE);
  });
  afterEach(async () => {
    await events?.stop();
    events = undefined;
    mm.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** What a sender does: mark the port pending for vCPU 0, then ring the doorbell. */
  const send = (): void => {
    shared.markPending(0, PORT);
    bell.ring();
  };
  const until = async (cond: () => boolean, ms = 2000): Promise<void> => {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error('condition not met in time');
      await new Promise((r) => setTimeout(r, 1));
    }
  };

  it('delivers an event to its port handler once and clears it pending', async () => {
    events = new DomainEvents(hc, mm.buffer as ArrayBuffer, 20, { poll: { startUs: 0 } });
    let n = 0;
    events.on(PORT, () => n++);
    send();
    await until(() => n === 1);
    expect(shared.isPending(PORT)).toBe(false);
    await new Promise((r) => setTimeout(r, 30));
    expect(n).toBe(1);
  });

  it('takes an event that comes inside the busy-poll window without sleeping, and sleeps after it closes', async () => {
    // A 100 ms window: wide, so a loaded machine cannot push the second event out of it.
    events = new DomainEvents(hc, mm.buffer as ArrayBuffer, 20, { poll: { startUs: 100_000, maxUs: 100_000 } });
    let n = 0;
    events.on(PORT, () => n++);
    send();
    await until(() => n === 1);
    // (The first event may be taken by on()'s own look before the sleeping loop wakes: let the
    // loop wake and enter its window before the second.)
    await until(() => events!.counters.wakeups >= 1);
    await new Promise((r) => setTimeout(r, 5));
    // Inside the window opened by that event: seen by a look, not by a futex wake-up.
    send();
    await until(() => n === 2);
    expect(events.counters.pollHits).toBeGreaterThanOrEqual(1);
    // Then the window closes (100 ms after the last event) and the loop sleeps on the futex.
    await until(() => events!.counters.pollMisses >= 1);
    await new Promise((r) => setTimeout(r, 5));
    const wakeups = events.counters.wakeups;
    send();
    await until(() => n === 3);
    expect(events.counters.wakeups).toBeGreaterThan(wakeups);
  });

  it('with the window off, every event is a futex wake-up and nothing is polled', async () => {
    events = new DomainEvents(hc, mm.buffer as ArrayBuffer, 20, { poll: { startUs: 0 } });
    let n = 0;
    events.on(PORT, () => n++);
    for (let i = 1; i <= 3; i++) {
      await new Promise((r) => setTimeout(r, 5));
      send();
      await until(() => n === i);
    }
    expect(events.counters.pollHits).toBe(0);
    expect(events.counters.pollMisses).toBe(0);
  });

  it('the window adapts: sleeps within the bound grow it, longer idle gaps shrink it to nothing (no clock involved)', () => {
    const w = new PollWindow(0.05, 1);
    // An answer that came 0.3 ms after the last activity, after a sleep: polling would have caught it.
    w.slept(0.3);
    expect(w.windowMs).toBeCloseTo(0.1);
    for (let i = 0; i < 10; i++) w.slept(0.3);
    expect(w.windowMs).toBe(1); // bounded
    expect(w.grown).toBe(5);
    // Gaps beyond the bound: halve each time, then stop polling altogether.
    const windows: number[] = [];
    for (let i = 0; i < 10 && w.windowMs > 0; i++) {
      w.slept(5);
      windows.push(w.windowMs);
    }
    expect(windows).toEqual([0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0]);
    // Polling off (start 0) never starts.
    const off = new PollWindow(0, 1);
    off.slept(0.1);
    expect(off.windowMs).toBe(0);
    // From 0, a sleep within the bound starts again at the start window.
    w.slept(0.2);
    expect(w.windowMs).toBe(0.05);
  });

  it('a process whose events come quickly polls for them: the window grows and then catches them', async () => {
    events = new DomainEvents(hc, mm.buffer as ArrayBuffer, 200, { poll: { startUs: 1000, maxUs: 200_000 } });
    let n = 0;
    events.on(PORT, () => n++);
    // Gaps of 20 ms, within the (generous, so load cannot matter) 200 ms bound.
    for (let i = 0; i < 12; i++) {
      await new Promise((r) => setTimeout(r, 20));
      send();
      const want = i + 1;
      await until(() => n >= want);
    }
    expect(events.window.grown).toBeGreaterThanOrEqual(2);
    expect(events.counters.pollHits).toBeGreaterThanOrEqual(1);
  });
});
