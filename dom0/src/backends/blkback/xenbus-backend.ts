/**
 * The backend half of the xenbus handshake (io/xenbus.h states, fact sheet §2.3 "Handshake",
 * docs/xenbus-handshake.md) as a pure reducer: given the machine and one input (the device was
 * probed, the frontend's `state` changed, the ring got mapped, `online` changed) it returns the
 * next machine and the actions to carry out, in order: xenstore writes relative to the backend
 * directory, state switches, mapping or unmapping the ring. Nothing here does I/O, so every path
 * of the handshake is a table-driven unit test, and the wiring (watches, the xenstore client,
 * grant map, event-channel bind) is a thin loop around `backendStep`.
 */
import { XenbusState, xenbusStateName } from '@xenlab/xen-public';

export interface FrontendRing {
  readonly ringRef: number;
  readonly eventChannel: number;
  readonly protocol: string;
  /** Both ends wrote `feature-persistent=1`: serve with persistent grants. */
  readonly persistent: boolean;
}

export interface BackendMachine {
  readonly state: XenbusState;
  readonly frontendState: XenbusState;
  /** The ring is mapped and served. */
  readonly connected: boolean;
  /** A `connect` action is out and its result has not come back. */
  readonly connecting: boolean;
  readonly online: boolean;
  /** Written before InitWait (features). */
  readonly featureKeys: Readonly<Record<string, string>>;
  /** Written just before Connected (sectors, info, sector-size). */
  readonly connectKeys: Readonly<Record<string, string>>;
}

/** The frontend's nodes as read after its `state` changed (absent nodes are undefined). */
export interface FrontendNodes {
  readonly 'ring-ref'?: string | undefined;
  readonly 'event-channel'?: string | undefined;
  readonly protocol?: string | undefined;
  readonly 'feature-persistent'?: string | undefined;
}

export type BackendInput =
  | { readonly kind: 'probe' }
  | { readonly kind: 'probe-failed'; readonly reason: string }
  /** `state` is undefined when the frontend's node is gone (the frontend was torn down). */
  | { readonly kind: 'frontend-changed'; readonly state: XenbusState | undefined; readonly nodes?: FrontendNodes }
  | { readonly kind: 'ring-connected' }
  | { readonly kind: 'ring-connect-failed'; readonly reason: string }
  | { readonly kind: 'online-changed'; readonly online: boolean };

export type BackendAction =
  | { readonly kind: 'write'; readonly key: string; readonly value: string }
  | { readonly kind: 'set-state'; readonly state: XenbusState }
  | { readonly kind: 'connect'; readonly ring: FrontendRing }
  | { readonly kind: 'disconnect' }
  /** A problem to report in the device's `error` node and dom0's log. */
  | { readonly kind: 'error'; readonly message: string }
  /** The device is finished: remove the backend directory, close the image. */
  | { readonly kind: 'remove' };

export const NATIVE_PROTOCOL = 'x86_64-abi';

export function createBackendMachine(featureKeys: Record<string, string>, connectKeys: Record<string, string>): BackendMachine {
  return {
    state: XenbusState.Initialising,
    frontendState: XenbusState.Initialising,
    connected: false,
    connecting: false,
    online: true,
    featureKeys,
    connectKeys,
  };
}

/**
 * Reads the frontend's ring details, or says what is wrong with them. `offered`: this backend
 * wrote `feature-persistent=1`; persistent grants are used only if the frontend wrote exactly `1`.
 */
export function parseFrontendRing(nodes: FrontendNodes | undefined, offered = false): FrontendRing | string {
  const u32 = (name: keyof FrontendNodes): number | string => {
    const v = nodes?.[name];
    if (v === undefined) return `frontend did not write ${name}`;
    if (!/^[0-9]{1,10}$/.test(v) || Number(v) > 0xffffffff) return `frontend's ${name} '${v}' is not a u32`;
    return Number(v);
  };
  const ringRef = u32('ring-ref');
  if (typeof ringRef === 'string') return ringRef;
  const eventChannel = u32('event-channel');
  if (typeof eventChannel === 'string') return eventChannel;
  if (eventChannel === 0) return 'frontend\'s event-channel is 0 (port 0 is never valid)';
  const protocol = nodes?.protocol ?? NATIVE_PROTOCOL;
  if (protocol !== NATIVE_PROTOCOL) return `frontend's protocol '${protocol}' is not supported (only ${NATIVE_PROTOCOL})`;
  return { ringRef, eventChannel, protocol, persistent: offered && nodes?.['feature-persistent'] === '1' };
}

export function backendStep(m: BackendMachine, input: BackendInput): { machine: BackendMachine; actions: BackendAction[] } {
  const actions: BackendAction[] = [];
  let next: BackendMachine = m;
  const set = (state: XenbusState) => {
    if (next.state !== state) {
      next = { ...next, state };
      actions.push({ kind: 'set-state', state });
    }
  };
  const disconnect = () => {
    if (next.connected || next.connecting) {
      actions.push({ kind: 'disconnect' });
      next = { ...next, connected: false, connecting: false };
    }
  };
  const publishFeatures = () => {
    for (const [key, value] of Object.entries(next.featureKeys)) actions.push({ kind: 'write', key, value });
  };

  switch (input.kind) {
    case 'probe':
      if (m.state === XenbusState.Initialising) {
        publishFeatures();
        set(XenbusState.InitWait);
      }
      break;
    case 'probe-failed':
      actions.push({ kind: 'error', message: input.reason });
      set(XenbusState.Closing);
      break;
    case 'ring-connected':
      if (!m.connecting) break;
      next = { ...next, connecting: false, connected: true };
      for (const [key, value] of Object.entries(next.connectKeys)) actions.push({ kind: 'write', key, value });
      set(XenbusState.Connected);
      break;
    case 'ring-connect-failed':
      if (!m.connecting) break;
      next = { ...next, connecting: false };
      actions.push({ kind: 'error', message: `mapping the ring failed: ${input.reason}` });
      set(XenbusState.Closing);
      break;
    case 'online-changed':
      next = { ...next, online: input.online };
      if (!input.online) {
        if (next.state === XenbusState.Closed || next.frontendState === XenbusState.Closed) {
          disconnect();
          set(XenbusState.Closed);
          actions.push({ kind: 'remove' });
        } else {
          set(XenbusState.Closing);
        }
      }
      break;
    case 'frontend-changed': {
      const fe = input.state;
      next = { ...next, frontendState: fe ?? XenbusState.Unknown };
      switch (fe) {
        case XenbusState.Initialising:
          // A frontend starting over after a close: offer the device again.
          if (next.state === XenbusState.Closed && next.online) {
            publishFeatures();
            set(XenbusState.InitWait);
          }
          break;
        case XenbusState.InitWait:
          break;
        case XenbusState.Initialised:
        case XenbusState.Connected: {
          if (next.connected || next.connecting) break;
          if (next.state !== XenbusState.InitWait) {
            if (next.state === XenbusState.Initialising) actions.push({ kind: 'error', message: `frontend is ${xenbusStateName(fe)} before the backend was probed` });
            break;
          }
          const ring = parseFrontendRing(input.nodes, next.featureKeys['feature-persistent'] === '1');
          if (typeof ring === 'string') {
            actions.push({ kind: 'error', message: ring });
            set(XenbusState.Closing);
            break;
          }
          next = { ...next, connecting: true };
          actions.push({ kind: 'connect', ring });
          break;
        }
        case XenbusState.Closing:
          disconnect();
          set(XenbusState.Closing);
          break;
        case XenbusState.Closed:
          disconnect();
          set(XenbusState.Closed);
          if (!next.online) actions.push({ kind: 'remove' });
          break;
        case XenbusState.Unknown:
        case undefined:
          disconnect();
          set(XenbusState.Closed);
          actions.push({ kind: 'remove' });
          break;
        default:
          actions.push({ kind: 'error', message: `frontend switched to ${xenbusStateName(fe)}, which a vbd does not use` });
      }
      break;
    }
  }
  return { machine: next, actions };
}
