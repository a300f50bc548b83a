import { XenbusState as S } from '@xenlab/xen-public';
import { describe, expect, it } from 'vitest';
import { BackendXenbusDriver, connectKeys, createBackendMachine, errorPath, type XenbusStore, featureKeys, type FrontendRing } from './index.ts';
import type { XenstoreClient } from '@xenlab/xenstore-client';

const BE = '/local/domain/0/backend/vbd/5/51712';
const FE = '/local/domain/5/device/vbd/51712';

function setup(connectFails?: string) {
  const store = new Map<string, string>([[`${BE}/state`, '1'], [`${BE}/online`, '1'], [`${FE}/state`, '1']]);
  const calls: string[] = [];
  const driver = new BackendXenbusDriver({
    store: { tryRead: async (p) => store.get(p), write: async (p, v) => void store.set(p, v) },
    backendPath: BE,
    frontendPath: FE,
    machine: createBackendMachine(featureKeys(), connectKeys({ sizeBytes: 1 << 20, readOnly: false })),
    connect: async (ring: FrontendRing) => {
      calls.push(`connect ${ring.ringRef} ${ring.eventChannel}`);
      if (connectFails) throw new Error(connectFails);
    },
    disconnect: async () => void calls.push('disconnect'),
    remove: async () => void calls.push('remove'),
  });
  const frontend = async (state: number, nodes: Record<string, string> = {}) => {
    for (const [k, v] of Object.entries(nodes)) store.set(`${FE}/${k}`, v);
    store.set(`${FE}/state`, String(state));
    await driver.changed();
  };
  return { store, calls, driver, frontend };
}

/** Compile-time: the real xenstore client is a XenbusStore. */
export type ClientIsStore = XenstoreClient extends XenbusStore ? true : never;
const clientIsStore: ClientIsStore = true;

describe('backend xenbus driver', () => {
  it('XenstoreClient satisfies XenbusStore', () => expect(clientIsStore).toBe(true));

  it('publishes features, connects the ring the frontend published, then the disk size', async () => {
    const t = setup();
    await t.driver.probe();
    expect(t.store.get(`${BE}/state`)).toBe('2');
    expect(t.store.get(`${BE}/feature-flush-cache`)).toBe('1');
    expect(t.store.has(`${BE}/sectors`)).toBe(false);
    await t.driver.changed(); // a spurious watch event changes nothing
    await t.frontend(S.Initialised, { 'ring-ref': '8', 'event-channel': '4', protocol: 'x86_64-abi' });
    expect(t.calls).toEqual(['connect 8 4']);
    expect(t.store.get(`${BE}/sectors`)).toBe('2048');
    expect(t.store.get(`${BE}/state`)).toBe('4');
    await t.frontend(S.Connected);
    expect(t.calls).toEqual(['connect 8 4']);
  });

  it('closes and removes the device when the toolstack sets online=0 and the frontend closes', async () => {
    const t = setup();
    await t.driver.probe();
    await t.frontend(S.Initialised, { 'ring-ref': '8', 'event-channel': '4' });
    t.store.set(`${BE}/online`, '0');
    await t.driver.changed();
    expect(t.store.get(`${BE}/state`)).toBe('5');
    await t.frontend(S.Closed);
    expect(t.calls).toEqual(['connect 8 4', 'disconnect', 'remove']);
    expect(t.store.get(`${BE}/state`)).toBe('6');
  });

  it('a ring that cannot be mapped is reported in the error node and the device closes', async () => {
    const t = setup('GNTST_bad_gntref');
    await t.driver.probe();
    await t.frontend(S.Initialised, { 'ring-ref': '999', 'event-channel': '4' });
    expect(t.store.get(errorPath(BE))).toBe('mapping the ring failed: GNTST_bad_gntref');
    expect(errorPath(BE)).toBe('/local/domain/0/error/backend/vbd/5/51712/error');
    expect(t.store.get(`${BE}/state`)).toBe('5');
  });

  it('a vanished frontend tears the device down', async () => {
    const t = setup();
    await t.driver.probe();
    await t.frontend(S.Initialised, { 'ring-ref': '8', 'event-channel': '4' });
    t.store.delete(`${FE}/state`);
    await t.driver.changed();
    expect(t.calls).toEqual(['connect 8 4', 'disconnect', 'remove']);
  });
});
