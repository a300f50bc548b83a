import { XenbusState as S } from '@xenlab/xen-public';
import { describe, expect, it } from 'vitest';
import { backendStep, connectKeys, createBackendMachine, featureKeys, parseFrontendRing, type BackendInput, type BackendMachine } from './index.ts';

const FEATURES = featureKeys();
const CONNECT = connectKeys({ sizeBytes: 64 * 1024 * 1024 + 100, readOnly: false });
const NODES = { 'ring-ref': '8', 'event-channel': '5', protocol: 'x86_64-abi' };

function run(inputs: BackendInput[], m: BackendMachine = createBackendMachine(FEATURES, CONNECT)) {
  const all = [];
  for (const i of inputs) {
    const r = backendStep(m, i);
    m = r.machine;
    all.push(...r.actions);
  }
  return { m, actions: all };
}

describe('blkback xenstore keys', () => {
  it('features before InitWait, size and kind before Connected', () => {
    expect(FEATURES).toEqual({
      'feature-flush-cache': '1', 'feature-barrier': '0', 'feature-persistent': '1', 'feature-discard': '1',
      'max-ring-page-order': '0', 'multi-queue-max-queues': '1',
      'discard-granularity': '512', 'discard-alignment': '0', 'discard-secure': '0',
    });
    expect(featureKeys({ flush: false, discard: false })).not.toHaveProperty('discard-granularity');
    expect(featureKeys({ persistent: false })['feature-persistent']).toBe('0');
    expect(FEATURES).not.toHaveProperty('feature-max-indirect-segments');
    expect(CONNECT).toEqual({ sectors: '131072', 'sector-size': '512', 'physical-sector-size': '512', info: '0' });
    expect(connectKeys({ sizeBytes: 1024, readOnly: true, cdrom: true, removable: true }).info).toBe('7');
  });
});

describe('backend xenbus state machine', () => {
  it('persistent grants only when this backend offered them and the frontend wrote exactly 1', () => {
    const connectWith = (offer: boolean, fe: string | undefined) => {
      const m = createBackendMachine(featureKeys({ persistent: offer }), CONNECT);
      const r = run([{ kind: 'probe' }, { kind: 'frontend-changed', state: S.Initialised, nodes: { ...NODES, 'feature-persistent': fe } }], m);
      const c = r.actions.find((a) => a.kind === 'connect');
      return c?.kind === 'connect' ? c.ring.persistent : undefined;
    };
    expect(connectWith(true, '1')).toBe(true);
    expect(connectWith(true, '0')).toBe(false);
    expect(connectWith(true, undefined)).toBe(false);
    expect(connectWith(true, 'yes')).toBe(false);
    expect(connectWith(false, '1')).toBe(false);
  });

  it('walks the normal handshake: InitWait, connect, Connected', () => {
    let r = run([{ kind: 'probe' }]);
    expect(r.actions.filter((a) => a.kind === 'write').map((a) => a.kind === 'write' && a.key)).toEqual(Object.keys(FEATURES));
    expect(r.actions.at(-1)).toEqual({ kind: 'set-state', state: S.InitWait });
    r = run([{ kind: 'frontend-changed', state: S.Initialised, nodes: NODES }], r.m);
    expect(r.actions).toEqual([{ kind: 'connect', ring: { ringRef: 8, eventChannel: 5, protocol: 'x86_64-abi', persistent: false } }]);
    expect(r.m.state).toBe(S.InitWait);
    r = run([{ kind: 'ring-connected' }], r.m);
    expect(r.actions).toEqual([
      ...Object.entries(CONNECT).map(([key, value]) => ({ kind: 'write', key, value })),
      { kind: 'set-state', state: S.Connected },
    ]);
    // The frontend's own Connected changes nothing.
    expect(run([{ kind: 'frontend-changed', state: S.Connected, nodes: NODES }], r.m).actions).toEqual([]);
  });

  it('a frontend that skips Initialised (straight to Connected) is still connected', () => {
    const r = run([{ kind: 'probe' }, { kind: 'frontend-changed', state: S.Connected, nodes: NODES }]);
    expect(r.actions.at(-1)).toMatchObject({ kind: 'connect' });
  });

  it('closes: disconnect, Closing, Closed, and removal once offline', () => {
    let r = run([{ kind: 'probe' }, { kind: 'frontend-changed', state: S.Initialised, nodes: NODES }, { kind: 'ring-connected' }]);
    r = run([{ kind: 'frontend-changed', state: S.Closing }], r.m);
    expect(r.actions).toEqual([{ kind: 'disconnect' }, { kind: 'set-state', state: S.Closing }]);
    r = run([{ kind: 'frontend-changed', state: S.Closed }], r.m);
    expect(r.actions).toEqual([{ kind: 'set-state', state: S.Closed }]);
    r = run([{ kind: 'online-changed', online: false }], r.m);
    expect(r.actions).toEqual([{ kind: 'remove' }]);
  });

  it('toolstack removal (online=0) while connected: Closing, then removed when the frontend closes', () => {
    let r = run([{ kind: 'probe' }, { kind: 'frontend-changed', state: S.Initialised, nodes: NODES }, { kind: 'ring-connected' }, { kind: 'online-changed', online: false }]);
    expect(r.m.state).toBe(S.Closing);
    r = run([{ kind: 'frontend-changed', state: S.Closed }], r.m);
    expect(r.actions).toEqual([{ kind: 'disconnect' }, { kind: 'set-state', state: S.Closed }, { kind: 'remove' }]);
  });

  it('reconnects when a closed frontend starts over', () => {
    let r = run([{ kind: 'probe' }, { kind: 'frontend-changed', state: S.Initialised, nodes: NODES }, { kind: 'ring-connected' }, { kind: 'frontend-changed', state: S.Closed }]);
    r = run([{ kind: 'frontend-changed', state: S.Initialising }], r.m);
    expect(r.actions.at(-1)).toEqual({ kind: 'set-state', state: S.InitWait });
    r = run([{ kind: 'frontend-changed', state: S.Initialised, nodes: { ...NODES, 'ring-ref': '9' } }, { kind: 'ring-connected' }], r.m);
    expect(r.m.state).toBe(S.Connected);
  });

  it('a vanished frontend tears the device down', () => {
    const r = run([{ kind: 'probe' }, { kind: 'frontend-changed', state: S.Initialised, nodes: NODES }, { kind: 'ring-connected' }, { kind: 'frontend-changed', state: undefined }]);
    expect(r.actions.slice(-3)).toEqual([{ kind: 'disconnect' }, { kind: 'set-state', state: S.Closed }, { kind: 'remove' }]);
  });

  it.each([
    [{ 'event-channel': '5' }, 'did not write ring-ref'],
    [{ 'ring-ref': 'x', 'event-channel': '5' }, "ring-ref 'x' is not a u32"],
    [{ 'ring-ref': '8', 'event-channel': '99999999999' }, 'is not a u32'],
    [{ 'ring-ref': '8', 'event-channel': '0' }, 'port 0'],
    [{ 'ring-ref': '8', 'event-channel': '5', protocol: 'x86_32-abi' }, "protocol 'x86_32-abi' is not supported"],
  ])('bad frontend nodes %j: error and Closing', (nodes, msg) => {
    expect(parseFrontendRing(nodes)).toContain(msg);
    const r = run([{ kind: 'probe' }, { kind: 'frontend-changed', state: S.Initialised, nodes }]);
    expect(r.actions.slice(-2)).toEqual([{ kind: 'error', message: expect.stringContaining(msg) }, { kind: 'set-state', state: S.Closing }]);
  });

  it('defaults the protocol to native; a failed mapping closes; stray results are ignored', () => {
    expect(parseFrontendRing({ 'ring-ref': '8', 'event-channel': '5' })).toEqual({ ringRef: 8, eventChannel: 5, protocol: 'x86_64-abi', persistent: false });
    const r = run([{ kind: 'probe' }, { kind: 'frontend-changed', state: S.Initialised, nodes: NODES }, { kind: 'ring-connect-failed', reason: 'GNTST_bad_gntref' }]);
    expect(r.actions.slice(-2)).toEqual([{ kind: 'error', message: 'mapping the ring failed: GNTST_bad_gntref' }, { kind: 'set-state', state: S.Closing }]);
    expect(run([{ kind: 'ring-connected' }]).actions).toEqual([]);
    expect(run([{ kind: 'probe' }, { kind: 'frontend-changed', state: S.Reconfiguring }]).actions.at(-1)).toMatchObject({ kind: 'error' });
    expect(run([{ kind: 'probe-failed', reason: 'image not found' }]).actions).toEqual([{ kind: 'error', message: 'image not found' }, { kind: 'set-state', state: S.Closing }]);
  });
});
