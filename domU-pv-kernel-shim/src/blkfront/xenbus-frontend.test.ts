import { XenbusState as S } from '@xenlab/xen-public';
import { describe, expect, it } from 'vitest';
import { createFrontendMachine, frontendStep, parseDiskInfo, type FrontendInput, type FrontendMachine } from './xenbus-frontend.ts';

const BACKEND = { sectors: '8192', 'sector-size': '512', info: '0', 'feature-flush-cache': '1', 'feature-discard': '0' };

function run(inputs: FrontendInput[], m: FrontendMachine = createFrontendMachine()) {
  const actions = [];
  for (const i of inputs) {
    const r = frontendStep(m, i);
    m = r.machine;
    actions.push(...r.actions);
  }
  return { m, actions };
}

describe('frontend xenbus state machine', () => {
  it('walks the handshake: setup on InitWait, publish, Initialised, Connected', () => {
    let r = run([{ kind: 'start' }]);
    expect(r.actions).toEqual([]);
    r = run([{ kind: 'backend-changed', state: S.InitWait }], r.m);
    expect(r.actions).toEqual([{ kind: 'setup-ring' }]);
    r = run([{ kind: 'ring-ready', ringRef: 9, eventChannel: 4 }], r.m);
    expect(r.actions).toEqual([
      { kind: 'write', key: 'ring-ref', value: '9' },
      { kind: 'write', key: 'event-channel', value: '4' },
      { kind: 'write', key: 'protocol', value: 'x86_64-abi' },
      { kind: 'write', key: 'feature-persistent', value: '0' },
      { kind: 'set-state', state: S.Initialised },
    ]);
    r = run([{ kind: 'backend-changed', state: S.Connected, nodes: BACKEND }], r.m);
    expect(r.actions).toEqual([
      { kind: 'connected', disk: { sectors: 8192, sectorSize: 512, readOnly: false, cdrom: false, removable: false, flush: true, discard: false, persistent: false } },
      { kind: 'set-state', state: S.Connected },
    ]);
  });

  it('negotiates feature-persistent: written 1 only when the backend offered and this frontend can; connected says so', () => {
    const negotiate = (frontend: boolean, backend: string | undefined) => {
      const r = run(
        [
          { kind: 'backend-changed', state: S.InitWait, nodes: { 'feature-persistent': backend } },
          { kind: 'ring-ready', ringRef: 9, eventChannel: 4 },
          // The backend's node at Connected does not change what was agreed.
          { kind: 'backend-changed', state: S.Connected, nodes: { ...BACKEND, 'feature-persistent': backend } },
        ],
        createFrontendMachine({ persistent: frontend }),
      );
      const w = r.actions.find((a) => a.kind === 'write' && a.key === 'feature-persistent');
      const c = r.actions.find((a) => a.kind === 'connected');
      return { written: w?.kind === 'write' ? w.value : undefined, persistent: c?.kind === 'connected' ? c.disk.persistent : undefined };
    };
    expect(negotiate(true, '1')).toEqual({ written: '1', persistent: true });
    expect(negotiate(true, '0')).toEqual({ written: '0', persistent: false });
    expect(negotiate(true, undefined)).toEqual({ written: '0', persistent: false });
    expect(negotiate(false, '1')).toEqual({ written: '0', persistent: false });
  });

  it('the backend already waiting when the frontend starts', () => {
    const r = run([{ kind: 'backend-changed', state: S.InitWait }, { kind: 'start' }]);
    expect(r.actions).toEqual([{ kind: 'setup-ring' }]);
    expect(run([{ kind: 'backend-changed', state: S.InitWait }], r.m).actions).toEqual([]);
  });

  it('closes when the backend closes; tears down the ring', () => {
    let r = run([{ kind: 'backend-changed', state: S.InitWait }, { kind: 'ring-ready', ringRef: 9, eventChannel: 4 }, { kind: 'backend-changed', state: S.Connected, nodes: BACKEND }]);
    r = run([{ kind: 'backend-changed', state: S.Closing }], r.m);
    expect(r.actions).toEqual([{ kind: 'teardown' }, { kind: 'set-state', state: S.Closed }]);
  });

  it('a shutdown: Closing, then Closed when the backend has closed', () => {
    let r = run([{ kind: 'backend-changed', state: S.InitWait }, { kind: 'ring-ready', ringRef: 9, eventChannel: 4 }, { kind: 'backend-changed', state: S.Connected, nodes: BACKEND }, { kind: 'close' }]);
    expect(r.actions.at(-1)).toEqual({ kind: 'set-state', state: S.Closing });
    r = run([{ kind: 'backend-changed', state: S.Closed }], r.m);
    expect(r.actions).toEqual([{ kind: 'teardown' }, { kind: 'set-state', state: S.Closed }]);
  });

  it.each([
    [{}, 'did not write sectors'],
    [{ sectors: 'lots' }, 'is not a number'],
    [{ sectors: '8', 'sector-size': '4096' }, 'feature-large-sector-size'],
    [{ sectors: '8', info: '-1' }, "info '-1'"],
  ])('bad backend nodes %j: error and Closing', (nodes, msg) => {
    expect(parseDiskInfo(nodes)).toContain(msg);
    const r = run([{ kind: 'backend-changed', state: S.InitWait }, { kind: 'ring-ready', ringRef: 9, eventChannel: 4 }, { kind: 'backend-changed', state: S.Connected, nodes }]);
    expect(r.actions.slice(-2)).toEqual([{ kind: 'error', message: expect.stringContaining(msg) }, { kind: 'set-state', state: S.Closing }]);
  });

  it('reads the VDISK bits; a ring that cannot be set up closes the device', () => {
    expect(parseDiskInfo({ sectors: '1', info: '5' })).toMatchObject({ cdrom: true, readOnly: true, removable: false });
    const r = run([{ kind: 'backend-changed', state: S.InitWait }, { kind: 'ring-failed', reason: 'no grant refs' }]);
    expect(r.actions.slice(-2)).toEqual([{ kind: 'error', message: 'setting up the ring failed: no grant refs' }, { kind: 'set-state', state: S.Closing }]);
  });
});
