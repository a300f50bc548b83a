import { XenbusState as S } from '@xenlab/xen-public';
import { describe, expect, it } from 'vitest';
import type { BlkDiskInfo } from './blkfront.ts';
import { errorPath, type XenbusStore, FrontendXenbusDriver } from './xenbus-driver.ts';
import type { XenstoreClient } from '@xenlab/xenstore-client';
import { createFrontendMachine } from './xenbus-frontend.ts';

const BE = '/local/domain/0/backend/vbd/5/51712';
const FE = '/local/domain/5/device/vbd/51712';

function setup(setupFails?: string) {
  const store = new Map<string, string>([[`${FE}/state`, '1'], [`${FE}/backend`, BE], [`${BE}/state`, '1']]);
  const calls: string[] = [];
  let disk: BlkDiskInfo | undefined;
  const driver = new FrontendXenbusDriver({
    store: { tryRead: async (p) => store.get(p), write: async (p, v) => void store.set(p, v) },
    frontendPath: FE,
    machine: createFrontendMachine(),
    setupRing: async () => {
      calls.push('setup');
      if (setupFails) throw new Error(setupFails);
      return { ringRef: 8, eventChannel: 4 };
    },
    connected: (d) => void (disk = d),
    teardown: async () => void calls.push('teardown'),
  });
  const backend = async (state: number, nodes: Record<string, string> = {}) => {
    for (const [k, v] of Object.entries(nodes)) store.set(`${BE}/${k}`, v);
    store.set(`${BE}/state`, String(state));
    await driver.changed();
  };
  return { store, calls, driver, backend, disk: () => disk };
}

/** Compile-time: the real xenstore client is a XenbusStore. */
export type ClientIsStore = XenstoreClient extends XenbusStore ? true : never;
const clientIsStore: ClientIsStore = true;

describe('frontend xenbus driver', () => {
  it('XenstoreClient satisfies XenbusStore', () => expect(clientIsStore).toBe(true));

  it('finds its backend, publishes the ring when the backend waits, connects when it connects', async () => {
    const t = setup();
    await t.driver.start();
    expect(t.driver.backend).toBe(BE);
    expect(t.calls).toEqual([]);
    await t.backend(S.InitWait, { 'feature-flush-cache': '1' });
    expect(t.calls).toEqual(['setup']);
    expect([t.store.get(`${FE}/ring-ref`), t.store.get(`${FE}/event-channel`), t.store.get(`${FE}/protocol`), t.store.get(`${FE}/state`)]).toEqual(['8', '4', 'x86_64-abi', '3']);
    await t.backend(S.Connected, { sectors: '2048', 'sector-size': '512', info: '4' });
    expect(t.disk()).toMatchObject({ sectors: 2048, readOnly: true, flush: true });
    expect(t.store.get(`${FE}/state`)).toBe('4');
    await t.backend(S.Closing);
    expect(t.calls).toEqual(['setup', 'teardown']);
    expect(t.store.get(`${FE}/state`)).toBe('6');
  });

  it('the backend already waiting at start', async () => {
    const t = setup();
    t.store.set(`${BE}/state`, '2');
    await t.driver.start();
    expect(t.calls).toEqual(['setup']);
    expect(t.store.get(`${FE}/state`)).toBe('3');
  });

  it('a ring that cannot be set up closes the device with an error node', async () => {
    const t = setup('no free grant references');
    await t.driver.start();
    await t.backend(S.InitWait);
    expect(t.store.get(errorPath(FE))).toBe('setting up the ring failed: no free grant references');
    expect(errorPath(FE)).toBe('/local/domain/5/error/device/vbd/51712/error');
    expect(t.store.get(`${FE}/state`)).toBe('5');
  });

  it('a device the toolstack did not link is logged, not thrown', async () => {
    const logs: string[] = [];
    const d = new FrontendXenbusDriver({
      store: { tryRead: async () => undefined, write: async () => {} },
      frontendPath: FE, machine: createFrontendMachine(), setupRing: async () => ({ ringRef: 1, eventChannel: 1 }), connected: () => {}, teardown: async () => {}, log: (l) => logs.push(l),
    });
    await d.start();
    expect(logs[0]).toContain('/backend is missing');
  });
});
