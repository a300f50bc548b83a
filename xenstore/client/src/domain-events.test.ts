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
import { DomainEvents } from './domain-events.ts';

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
    events = new DomainEvents(hc, mm.buffer as ArrayBuffer, 20, { poll: { startUs: 5000, maxUs: 5000 } });
    let n = 0;
    events.on(PORT, () => n++);
    send();
    await until(() => n === 1);
    // Inside the 5 ms window opened by that event: seen by a look, not by a futex wake-up.
    send();
    await until(() => n === 2);
    expect(events.counters.pollHits).toBeGreaterThanOrEqual(1);
    // Then the window closes (5 ms after the last event) and the loop sleeps on the futex.
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

  it('adapts the window: sleeps that a longer poll would have caught grow it, long idle gaps shrink it to nothing', async () => {
    events = new DomainEvents(hc, mm.buffer as ArrayBuffer, 200, { poll: { startUs: 1000, maxUs: 16_000 } });
    let n = 0;
    events.on(PORT, () => n++);
    const gap = async (ms: number) => {
      await new Promise((r) => setTimeout(r, ms));
      send();
      const want = n + 1;
      await until(() => n >= want);
    };
    // Events 4 ms apart: each is missed by a 1 ms poll, comes within the 16 ms bound: grow.
    for (let i = 0; i < 4; i++) await gap(4);
    expect(events.counters.windowGrown).toBeGreaterThanOrEqual(2);
    expect(events.pollWindowUs).toBeGreaterThanOrEqual(4000);
    // Now the window covers a 4 ms gap: taken while polling.
    const hits = events.counters.pollHits;
    await gap(2);
    expect(events.counters.pollHits).toBeGreaterThan(hits);
    // Gaps far beyond the bound: the window halves each time, down to 0 (no polling at all).
    for (let i = 0; i < 8 && events.pollWindowUs > 0; i++) await gap(40);
    expect(events.pollWindowUs).toBe(0);
    expect(events.counters.windowShrunk).toBeGreaterThanOrEqual(2);
  });
});
