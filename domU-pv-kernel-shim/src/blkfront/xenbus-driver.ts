/**
 * Drives the frontend xenbus machine (xenbus-frontend.ts) from xenstore, the mirror of dom0's
 * backend driver: the shim calls `start()` for each vbd it finds under `~/device/vbd`, and
 * `changed()` whenever its watch on the backend's `state` fires; the driver re-reads the
 * backend's nodes, steps the machine and carries out the actions (set up the ring, xenstore
 * writes, "connected" with the disk's description, teardown). Steps are serialised.
 * See docs/xenbus-handshake.md.
 */
import { parseXenbusState, type XenbusState } from '@xenlab/xen-public';
import type { BlkDiskInfo } from './blkfront.ts';
import { frontendStep, type FrontendAction, type FrontendInput, type FrontendMachine } from './xenbus-frontend.ts';

/** The xenstore operations the driver needs; `XenstoreClient` from @xenlab/xenstore-client satisfies it. */
export interface XenbusStore {
  tryRead(path: string): Promise<string | undefined>;
  write(path: string, value: string): Promise<void>;
}

/** The backend nodes the frontend reads when the backend connects. */
export const BACKEND_DISK_KEYS = ['sectors', 'sector-size', 'info', 'feature-flush-cache', 'feature-discard', 'feature-barrier', 'feature-persistent'] as const;

/** Where xenbus reports a device's error: `/local/domain/<id>/error/<rest of the path>/error`. */
export function errorPath(devicePath: string): string {
  const m = /^(\/local\/domain\/[0-9]+)\/(.+)$/.exec(devicePath);
  return m ? `${m[1]}/error/${m[2]}/error` : `${devicePath}/error`;
}

export interface FrontendDriverOptions {
  store: XenbusStore;
  /** `/local/domain/<fe-domid>/device/vbd/<devid>` */
  frontendPath: string;
  /** The backend directory; read from `<frontendPath>/backend` when not given. */
  backendPath?: string;
  machine: FrontendMachine;
  /** Allocate and grant the ring page, allocate an unbound event channel; throw to give up. */
  setupRing(): Promise<{ ringRef: number; eventChannel: number }>;
  /** The disk is usable: create the Blkfront. */
  connected(disk: BlkDiskInfo): void;
  /** Fail outstanding requests, revoke the ring grant, close the event channel. */
  teardown(): Promise<void>;
  log?: (line: string) => void;
}

export class FrontendXenbusDriver {
  private m: FrontendMachine;
  private chain: Promise<void> = Promise.resolve();
  private backendPath: string | undefined;
  private seenBackend: XenbusState | undefined | null = null;

  constructor(private readonly o: FrontendDriverOptions) {
    this.m = o.machine;
    this.backendPath = o.backendPath;
  }

  get machine(): FrontendMachine {
    return this.m;
  }

  /** The backend directory this device uses (known after `start`). */
  get backend(): string | undefined {
    return this.backendPath;
  }

  start(): Promise<void> {
    return this.serial(async () => {
      if (this.backendPath === undefined) {
        this.backendPath = await this.o.store.tryRead(`${this.o.frontendPath}/backend`);
        if (this.backendPath === undefined) throw new Error(`${this.o.frontendPath}/backend is missing: the toolstack did not link this device`);
      }
      await this.sync();
      await this.step({ kind: 'start' });
    });
  }

  /** A watch on the backend's state fired. */
  changed(): Promise<void> {
    return this.serial(() => this.sync());
  }

  /** The guest is shutting the device down. */
  close(): Promise<void> {
    return this.serial(() => this.step({ kind: 'close' }));
  }

  private serial(f: () => Promise<void>): Promise<void> {
    const next = this.chain.then(f).catch((e: unknown) => this.o.log?.(`xenbus ${this.o.frontendPath}: ${(e as Error).message ?? String(e)}`));
    this.chain = next;
    return next;
  }

  private async sync(): Promise<void> {
    if (this.backendPath === undefined) return;
    const state = parseXenbusState(await this.o.store.tryRead(`${this.backendPath}/state`));
    if (state === this.seenBackend) return;
    this.seenBackend = state;
    const nodes: Record<string, string | undefined> = {};
    for (const k of BACKEND_DISK_KEYS) nodes[k] = await this.o.store.tryRead(`${this.backendPath}/${k}`);
    await this.step({ kind: 'backend-changed', state, nodes });
  }

  private async step(input: FrontendInput): Promise<void> {
    const r = frontendStep(this.m, input);
    this.m = r.machine;
    for (const a of r.actions) await this.act(a);
  }

  private async act(a: FrontendAction): Promise<void> {
    const fe = this.o.frontendPath;
    switch (a.kind) {
      case 'setup-ring': {
        let ring: { ringRef: number; eventChannel: number };
        try {
          ring = await this.o.setupRing();
        } catch (e) {
          return this.step({ kind: 'ring-failed', reason: (e as Error).message ?? String(e) });
        }
        return this.step({ kind: 'ring-ready', ...ring });
      }
      case 'write':
        return this.o.store.write(`${fe}/${a.key}`, a.value);
      case 'set-state':
        return this.o.store.write(`${fe}/state`, String(a.state));
      case 'connected':
        this.o.connected(a.disk);
        return;
      case 'teardown':
        return this.o.teardown();
      case 'error':
        this.o.log?.(`xenbus ${fe}: ${a.message}`);
        return this.o.store.write(errorPath(fe), a.message);
    }
  }
}
