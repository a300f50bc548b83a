/**
 * The frontend half of the vbd xenbus handshake (io/xenbus.h, fact sheet §2.3 "Handshake",
 * docs/xenbus-handshake.md) as a pure reducer, the mirror of dom0's xenbus-backend.ts. Inputs
 * are what the shim observes (its own start, the backend's `state` and nodes, the ring being
 * ready, a shutdown); outputs are actions in order: set up the ring (allocate and grant the page,
 * allocate an unbound event channel), xenstore writes relative to the frontend directory, state
 * switches, "the disk is usable" with the backend's description, and teardown.
 */
import { XenbusState, xenbusStateName } from '@xenlab/xen-public';
import type { BlkDiskInfo } from './blkfront.ts';

export interface FrontendMachine {
  readonly state: XenbusState;
  readonly backendState: XenbusState;
  /** A `setup-ring` action is out and `ring-ready` has not come back. */
  readonly settingUp: boolean;
  readonly ringPublished: boolean;
  readonly connected: boolean;
  /** The shim asked to close (guest shutdown, device removal). */
  readonly closing: boolean;
  /** This frontend can keep a persistent pool of granted data pages (it has frames for one). */
  readonly canPersist: boolean;
  /** The backend's `feature-persistent` as last read. */
  readonly backendPersistent: boolean;
  /** What this frontend wrote as `feature-persistent` (both ends offered it). */
  readonly persistent: boolean;
}

/** The backend's nodes, read when its state changes (absent nodes are undefined). */
export type BackendNodes = Readonly<Record<string, string | undefined>>;

export type FrontendInput =
  | { readonly kind: 'start' }
  | { readonly kind: 'backend-changed'; readonly state: XenbusState | undefined; readonly nodes?: BackendNodes }
  | { readonly kind: 'ring-ready'; readonly ringRef: number; readonly eventChannel: number }
  | { readonly kind: 'ring-failed'; readonly reason: string }
  | { readonly kind: 'close' };

export type FrontendAction =
  | { readonly kind: 'setup-ring' }
  | { readonly kind: 'write'; readonly key: string; readonly value: string }
  | { readonly kind: 'set-state'; readonly state: XenbusState }
  | { readonly kind: 'connected'; readonly disk: BlkDiskInfo }
  | { readonly kind: 'teardown' }
  | { readonly kind: 'error'; readonly message: string };

export const NATIVE_PROTOCOL = 'x86_64-abi';

export function createFrontendMachine(opts: { persistent?: boolean } = {}): FrontendMachine {
  return {
    state: XenbusState.Initialising,
    backendState: XenbusState.Unknown,
    settingUp: false,
    ringPublished: false,
    connected: false,
    closing: false,
    canPersist: opts.persistent ?? false,
    backendPersistent: false,
    persistent: false,
  };
}

/** Reads the backend's description of the disk, or says what is wrong with it. */
export function parseDiskInfo(nodes: BackendNodes | undefined): BlkDiskInfo | string {
  const sectorsText = nodes?.sectors;
  if (sectorsText === undefined) return 'backend did not write sectors';
  if (!/^[0-9]{1,16}$/.test(sectorsText) || !Number.isSafeInteger(Number(sectorsText))) return `backend's sectors '${sectorsText}' is not a number`;
  const sectorSize = nodes?.['sector-size'] ?? '512';
  if (sectorSize !== '512') return `backend's sector-size ${sectorSize} needs feature-large-sector-size, which this frontend does not offer`;
  const infoText = nodes?.info ?? '0';
  if (!/^[0-9]{1,10}$/.test(infoText)) return `backend's info '${infoText}' is not a number`;
  const info = Number(infoText);
  const flag = (k: string) => nodes?.[k] === '1';
  return {
    sectors: Number(sectorsText),
    sectorSize: 512,
    cdrom: (info & 1) !== 0,
    removable: (info & 2) !== 0,
    readOnly: (info & 4) !== 0,
    flush: flag('feature-flush-cache'),
    discard: flag('feature-discard'),
    persistent: flag('feature-persistent'),
  };
}

export function frontendStep(m: FrontendMachine, input: FrontendInput): { machine: FrontendMachine; actions: FrontendAction[] } {
  const actions: FrontendAction[] = [];
  let next = m;
  const set = (state: XenbusState) => {
    if (next.state !== state) {
      next = { ...next, state };
      actions.push({ kind: 'set-state', state });
    }
  };
  const teardown = () => {
    if (next.ringPublished || next.settingUp || next.connected) actions.push({ kind: 'teardown' });
    next = { ...next, ringPublished: false, settingUp: false, connected: false };
  };
  const maybeSetup = () => {
    if (!next.closing && !next.settingUp && !next.ringPublished && next.state === XenbusState.Initialising) {
      next = { ...next, settingUp: true };
      actions.push({ kind: 'setup-ring' });
    }
  };
  const maybeConnect = (nodes: BackendNodes | undefined) => {
    if (next.connected || !next.ringPublished || next.closing) return;
    const disk = parseDiskInfo(nodes);
    if (typeof disk === 'string') {
      actions.push({ kind: 'error', message: disk });
      next = { ...next, closing: true };
      set(XenbusState.Closing);
      return;
    }
    next = { ...next, connected: true };
    // Persistent only if we wrote feature-persistent=1 (the backend read it when it connected).
    actions.push({ kind: 'connected', disk: { ...disk, persistent: disk.persistent && next.persistent } });
    set(XenbusState.Connected);
  };

  switch (input.kind) {
    case 'start':
      if (next.backendState === XenbusState.InitWait || next.backendState === XenbusState.Connected) maybeSetup();
      break;
    case 'ring-ready':
      if (!next.settingUp) break;
      next = { ...next, settingUp: false, ringPublished: true, persistent: next.canPersist && next.backendPersistent };
      actions.push({ kind: 'write', key: 'ring-ref', value: String(input.ringRef) });
      actions.push({ kind: 'write', key: 'event-channel', value: String(input.eventChannel) });
      actions.push({ kind: 'write', key: 'protocol', value: NATIVE_PROTOCOL });
      // Written before Initialised: the backend reads it when it maps the ring.
      actions.push({ kind: 'write', key: 'feature-persistent', value: next.persistent ? '1' : '0' });
      set(XenbusState.Initialised);
      break;
    case 'ring-failed':
      if (!next.settingUp) break;
      next = { ...next, settingUp: false, closing: true };
      actions.push({ kind: 'error', message: `setting up the ring failed: ${input.reason}` });
      set(XenbusState.Closing);
      break;
    case 'close':
      next = { ...next, closing: true };
      if (next.backendState === XenbusState.Closed || next.backendState === XenbusState.Unknown) {
        teardown();
        set(XenbusState.Closed);
      } else {
        set(XenbusState.Closing);
      }
      break;
    case 'backend-changed': {
      const be = input.state ?? XenbusState.Unknown;
      next = { ...next, backendState: be };
      // The backend's offer as published before InitWait; once our choice is written it stays.
      if (!next.ringPublished && input.nodes) next = { ...next, backendPersistent: input.nodes['feature-persistent'] === '1' };
      switch (be) {
        case XenbusState.Initialising:
        case XenbusState.Initialised:
          break;
        case XenbusState.InitWait:
          maybeSetup();
          break;
        case XenbusState.Connected:
          // A backend that skipped InitWait: set up first; connect once the ring is published
          // (the wiring re-reads the backend's nodes and sends backend-changed again).
          maybeSetup();
          maybeConnect(input.nodes);
          break;
        case XenbusState.Closing:
          teardown();
          set(XenbusState.Closed);
          break;
        case XenbusState.Closed:
        case XenbusState.Unknown:
          teardown();
          set(XenbusState.Closed);
          break;
        default:
          actions.push({ kind: 'error', message: `backend switched to ${xenbusStateName(be)}, which a vbd does not use` });
      }
      break;
    }
  }
  return { machine: next, actions };
}
