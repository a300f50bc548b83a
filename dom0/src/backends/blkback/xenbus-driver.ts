/**
 * Drives the backend xenbus machine (xenbus-backend.ts) from xenstore: the thin loop between the
 * pure reducer and the real store. dom0's wiring creates one driver per vbd, calls `probe()`
 * once the image is open, and `changed()` whenever its watches on the frontend's `state` or the
 * backend's `online` fire; the driver re-reads the nodes, steps the machine and carries out the
 * actions in order (xenstore writes, mapping the ring through `connect`, `disconnect`, `remove`).
 * Steps are serialised, so overlapping watch events cannot interleave. See docs/xenbus-handshake.md.
 */
import { parseXenbusState, type XenbusState } from '@xenlab/xen-public';
import { backendStep, type BackendAction, type BackendInput, type BackendMachine, type FrontendRing } from './xenbus-backend.ts';

/** The xenstore operations the driver needs; `XenstoreClient` from @xenlab/xenstore-client satisfies it. */
export interface XenbusStore {
  tryRead(path: string): Promise<string | undefined>;
  write(path: string, value: string): Promise<void>;
}

export interface BackendDriverOptions {
  store: XenbusStore;
  /** `/local/domain/<be>/backend/vbd/<fe-domid>/<devid>` */
  backendPath: string;
  /** `/local/domain/<fe-domid>/device/vbd/<devid>` */
  frontendPath: string;
  machine: BackendMachine;
  /** Map the ring and bind the event channel, then start serving; throw to refuse. */
  connect(ring: FrontendRing): Promise<void>;
  /** Stop serving, unmap, unbind. */
  disconnect(): Promise<void>;
  /** The device is finished: close the image, remove the backend directory. */
  remove(): Promise<void>;
  log?: (line: string) => void;
}

/** Where xenbus reports a device's error: `/local/domain/<id>/error/<rest of the path>/error`. */
export function errorPath(devicePath: string): string {
  const m = /^(\/local\/domain\/[0-9]+)\/(.+)$/.exec(devicePath);
  return m ? `${m[1]}/error/${m[2]}/error` : `${devicePath}/error`;
}

export class BackendXenbusDriver {
  private m: BackendMachine;
  private chain: Promise<void> = Promise.resolve();
  private online = true;
  private seenFrontend: XenbusState | undefined | null = null;

  constructor(private readonly o: BackendDriverOptions) {
    this.m = o.machine;
  }

  get machine(): BackendMachine {
    return this.m;
  }

  /** The image is open and the device may be offered: features, then InitWait. */
  probe(): Promise<void> {
    return this.serial(async () => {
      await this.step({ kind: 'probe' });
      await this.sync();
    });
  }

  /** The image could not be opened (or another setup step failed). */
  probeFailed(reason: string): Promise<void> {
    return this.serial(() => this.step({ kind: 'probe-failed', reason }));
  }

  /** A watch fired: re-read the frontend's state and our `online`, step on what changed. */
  changed(): Promise<void> {
    return this.serial(() => this.sync());
  }

  private serial(f: () => Promise<void>): Promise<void> {
    const next = this.chain.then(f).catch((e: unknown) => this.o.log?.(`xenbus ${this.o.backendPath}: ${(e as Error).message ?? String(e)}`));
    this.chain = next;
    return next;
  }

  private async sync(): Promise<void> {
    const online = (await this.o.store.tryRead(`${this.o.backendPath}/online`)) !== '0';
    if (online !== this.online) {
      this.online = online;
      await this.step({ kind: 'online-changed', online });
    }
    const text = await this.o.store.tryRead(`${this.o.frontendPath}/state`);
    const state = parseXenbusState(text);
    if (text !== undefined && state === undefined) this.o.log?.(`xenbus ${this.o.backendPath}: frontend state '${text}' is not a XenbusState`);
    if (state === this.seenFrontend) return;
    this.seenFrontend = state;
    const read = (k: string) => this.o.store.tryRead(`${this.o.frontendPath}/${k}`);
    const nodes = {
      'ring-ref': await read('ring-ref'),
      'event-channel': await read('event-channel'),
      protocol: await read('protocol'),
      'feature-persistent': await read('feature-persistent'),
    };
    await this.step({ kind: 'frontend-changed', state, nodes });
  }

  private async step(input: BackendInput): Promise<void> {
    const r = backendStep(this.m, input);
    this.m = r.machine;
    for (const a of r.actions) await this.act(a);
  }

  private async act(a: BackendAction): Promise<void> {
    const be = this.o.backendPath;
    switch (a.kind) {
      case 'write':
        return this.o.store.write(`${be}/${a.key}`, a.value);
      case 'set-state':
        return this.o.store.write(`${be}/state`, String(a.state));
      case 'connect':
        try {
          await this.o.connect(a.ring);
        } catch (e) {
          return this.step({ kind: 'ring-connect-failed', reason: (e as Error).message ?? String(e) });
        }
        return this.step({ kind: 'ring-connected' });
      case 'disconnect':
        return this.o.disconnect();
      case 'error':
        this.o.log?.(`xenbus ${be}: ${a.message}`);
        return this.o.store.write(errorPath(be), a.message);
      case 'remove':
        return this.o.remove();
    }
  }
}
