/**
 * The xenstore client library (what libxenstore's `xs_*` calls are to Xen's C tools), used by
 * dom0, the PV shim and qemu-dm: typed requests over either transport, replies matched by
 * req_id, watches as async streams, and transactions with an EAGAIN retry helper.
 * Protocol prose: ../../README.md.
 */
import {
  XS_HEADER_BYTES,
  XsFrameDecoder,
  XsType,
  bytesToString,
  encodeHeader,
  isXsErrorName,
  splitNul,
  toBytes,
  xsErrno,
  xsTypeName,
  type XsErrorName,
  type XsMessage,
} from '@xenlab/xen-public';
import type { EventChannel } from './event-channel.ts';
import { XenstoreRing } from './ring.ts';
import { RingTransport, connectSocket, defaultSocketPath, type XsTransport } from './transport.ts';

/** A request failed with one of Xen's error names (`code`), like libxenstore's errno. */
export class XenstoreError extends Error {
  readonly errno: number;
  constructor(
    readonly code: XsErrorName,
    readonly op: string,
    readonly path?: string,
  ) {
    super(`xenstore ${op}${path !== undefined ? ` ${path}` : ''}: ${code}`);
    this.name = 'XenstoreError';
    this.errno = xsErrno(code);
  }
}

export interface Permission {
  /** Domain id; the first entry of a list is the owner. */
  id: number;
  read: boolean;
  write: boolean;
}

export function parsePermission(s: string): Permission {
  const m = /^([nrwb])([0-9]+)$/.exec(s);
  if (!m) throw new Error(`xenstore: bad permission ${JSON.stringify(s)} (expected n|r|w|b followed by a domid, e.g. r5)`);
  const l = m[1]!;
  return { id: Number(m[2]), read: l === 'r' || l === 'b', write: l === 'w' || l === 'b' };
}

export function formatPermission(p: Permission): string {
  return (p.read ? (p.write ? 'b' : 'r') : p.write ? 'w' : 'n') + String(p.id);
}

export interface WatchEvent {
  path: string;
  token: string;
}

/** The read and write operations, in or outside a transaction. */
export interface XenstoreOps {
  read(path: string): Promise<Uint8Array>;
  readString(path: string): Promise<string>;
  /** The value, or undefined if the node does not exist. */
  tryRead(path: string): Promise<string | undefined>;
  exists(path: string): Promise<boolean>;
  write(path: string, value: string | Uint8Array): Promise<void>;
  mkdir(path: string): Promise<void>;
  rm(path: string): Promise<void>;
  directory(path: string): Promise<string[]>;
  getPerms(path: string): Promise<Permission[]>;
  setPerms(path: string, perms: readonly (Permission | string)[]): Promise<void>;
}

interface Pending {
  type: number;
  path: string | undefined;
  resolve: (m: XsMessage) => void;
  reject: (e: Error) => void;
}

export interface TransactionOptions {
  /** Attempts before giving up on EAGAIN (default 100). */
  maxAttempts?: number;
}

export class XenstoreClient implements XenstoreOps {
  private readonly decoder = new XsFrameDecoder();
  private readonly pending = new Map<number, Pending>();
  private readonly watchStreams = new Map<string, Set<WatchStream>>();
  private nextReqId = 1;
  private nextToken = 1;
  private closedErr: Error | undefined;

  constructor(private readonly transport: XsTransport) {
    transport.onData = (chunk) => this.receive(chunk);
    transport.onClose = (err) =>
      this.fail(new Error(err ? `xenstore: connection to xenstored lost: ${err.message}` : 'xenstore: connection closed by xenstored'));
  }

  /** Connects to xenstored's unix socket (default: like libxenstore, via XENSTORED_PATH). */
  static async connect(path: string = defaultSocketPath()): Promise<XenstoreClient> {
    return new XenstoreClient(await connectSocket(path));
  }

  /** A guest's client over its xenstore ring page and event channel. */
  static overRing(ring: XenstoreRing, evtchn: EventChannel): XenstoreClient {
    return new XenstoreClient(new RingTransport(ring, evtchn));
  }

  close(): void {
    this.transport.close();
    this.fail(new Error('xenstore: client closed'));
  }

  private fail(err: Error): void {
    if (this.closedErr) return;
    this.closedErr = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    for (const set of this.watchStreams.values()) for (const s of set) s.end();
    this.watchStreams.clear();
  }

  private receive(chunk: Uint8Array): void {
    for (const m of this.decoder.push(chunk)) {
      if (m.type === XsType.WATCH_EVENT) {
        const [path, token] = splitNul(m.payload);
        if (path === undefined || token === undefined) continue;
        const set = this.watchStreams.get(token);
        if (set) for (const s of set) s.push({ path, token });
        continue;
      }
      const p = this.pending.get(m.reqId);
      if (!p) continue;
      this.pending.delete(m.reqId);
      if (m.type === XsType.ERROR) {
        const name = splitNul(m.payload)[0] ?? '';
        p.reject(new XenstoreError(isXsErrorName(name) ? name : 'EINVAL', xsTypeName(p.type), p.path));
      } else if (m.type !== p.type) {
        p.reject(new Error(`xenstore: reply type ${xsTypeName(m.type)} to ${xsTypeName(p.type)}`));
      } else {
        p.resolve(m);
      }
    }
    if (this.decoder.error) {
      this.transport.close();
      this.fail(new Error(`xenstore: undecodable reply stream (${this.decoder.error})`));
    }
  }

  /** Sends one request and resolves with the reply payload; rejects with XenstoreError. */
  request(type: number, payload: Uint8Array | string, txId = 0, path?: string): Promise<Uint8Array> {
    if (this.closedErr) return Promise.reject(this.closedErr);
    const reqId = this.nextReqId;
    this.nextReqId = (this.nextReqId + 1) >>> 0 || 1;
    const body = toBytes(payload);
    const frame = new Uint8Array(XS_HEADER_BYTES + body.length);
    encodeHeader({ type, reqId, txId, len: body.length }, frame, 0);
    frame.set(body, XS_HEADER_BYTES);
    return new Promise((resolve, reject) => {
      this.pending.set(reqId, { type, path, resolve: (m) => resolve(m.payload), reject });
      this.transport.send(frame);
    });
  }

  // --- Node operations (outside any transaction) --------------------------------------------------

  read(path: string): Promise<Uint8Array> {
    return ops.read(this, 0, path);
  }
  readString(path: string): Promise<string> {
    return ops.readString(this, 0, path);
  }
  tryRead(path: string): Promise<string | undefined> {
    return ops.tryRead(this, 0, path);
  }
  exists(path: string): Promise<boolean> {
    return ops.exists(this, 0, path);
  }
  write(path: string, value: string | Uint8Array): Promise<void> {
    return ops.write(this, 0, path, value);
  }
  mkdir(path: string): Promise<void> {
    return ops.mkdir(this, 0, path);
  }
  rm(path: string): Promise<void> {
    return ops.rm(this, 0, path);
  }
  directory(path: string): Promise<string[]> {
    return ops.directory(this, 0, path);
  }
  getPerms(path: string): Promise<Permission[]> {
    return ops.getPerms(this, 0, path);
  }
  setPerms(path: string, perms: readonly (Permission | string)[]): Promise<void> {
    return ops.setPerms(this, 0, path, perms);
  }

  // --- Watches ------------------------------------------------------------------------------------

  /**
   * Watches `path` and its descendants. The stream yields an event for `path` at once (as Xen
   * does) and then one per change; `close()` (or leaving a for-await loop) unwatches.
   */
  async watch(path: string, token = `xenlab-${process.pid}-${this.nextToken++}`): Promise<WatchStream> {
    const s = new WatchStream(this, path, token);
    let set = this.watchStreams.get(token);
    if (!set) this.watchStreams.set(token, (set = new Set()));
    set.add(s);
    try {
      await this.request(XsType.WATCH, `${path}\0${token}\0`, 0, path);
    } catch (e) {
      set.delete(s);
      throw e;
    }
    return s;
  }

  /** @internal */
  async unwatch(s: WatchStream): Promise<void> {
    const set = this.watchStreams.get(s.token);
    set?.delete(s);
    if (set && set.size === 0) this.watchStreams.delete(s.token);
    if (!this.closedErr) await this.request(XsType.UNWATCH, `${s.path}\0${s.token}\0`, 0, s.path);
  }

  // --- Transactions -------------------------------------------------------------------------------

  async transactionStart(): Promise<Transaction> {
    const id = Number(bytesToString(await this.request(XsType.TRANSACTION_START, '\0')).replace(/\0.*$/s, ''));
    return new Transaction(this, id);
  }

  /**
   * Runs `body` in a transaction and commits it, starting again from scratch when the commit
   * fails with EAGAIN (someone changed what it read). `body` must be safe to re-run.
   */
  async transaction<R>(body: (tx: Transaction) => Promise<R>, opts: TransactionOptions = {}): Promise<R> {
    const max = opts.maxAttempts ?? 100;
    for (let attempt = 1; ; attempt++) {
      const tx = await this.transactionStart();
      let result: R;
      try {
        result = await body(tx);
      } catch (e) {
        await tx.abort().catch(() => {});
        throw e;
      }
      try {
        await tx.commit();
        return result;
      } catch (e) {
        if (!(e instanceof XenstoreError && e.code === 'EAGAIN') || attempt >= max) throw e;
      }
      // Back off a little, at random, so contending clients stop colliding in lockstep.
      if (attempt > 2) await new Promise((r) => setTimeout(r, Math.random() * Math.min(attempt, 20)));
    }
  }

  // --- Domains and the daemon ---------------------------------------------------------------------

  async getDomainPath(domid: number): Promise<string> {
    return bytesToString(await this.request(XsType.GET_DOMAIN_PATH, `${domid}\0`)).replace(/\0$/, '');
  }
  async introduceDomain(domid: number, gfn: number | bigint, port: number): Promise<void> {
    await this.request(XsType.INTRODUCE, `${domid}\0${gfn}\0${port}\0`);
  }
  async releaseDomain(domid: number): Promise<void> {
    await this.request(XsType.RELEASE, `${domid}\0`);
  }
  async resumeDomain(domid: number): Promise<void> {
    await this.request(XsType.RESUME, `${domid}\0`);
  }
  async isDomainIntroduced(domid: number): Promise<boolean> {
    return bytesToString(await this.request(XsType.IS_DOMAIN_INTRODUCED, `${domid}\0`)).startsWith('T');
  }
  async setTarget(domid: number, target: number): Promise<void> {
    await this.request(XsType.SET_TARGET, `${domid}\0${target}\0`);
  }
  async resetWatches(): Promise<void> {
    await this.request(XsType.RESET_WATCHES, '\0');
  }
  /** XS_CONTROL: e.g. `control('quota')`, `control('tree', '/local')`. */
  async control(...args: string[]): Promise<string> {
    return bytesToString(await this.request(XsType.CONTROL, args.map((a) => a + '\0').join(''))).replace(/\0$/, '');
  }
}

export class Transaction implements XenstoreOps {
  private done = false;
  constructor(
    private readonly client: XenstoreClient,
    readonly id: number,
  ) {}

  read(path: string): Promise<Uint8Array> {
    return ops.read(this.client, this.id, path);
  }
  readString(path: string): Promise<string> {
    return ops.readString(this.client, this.id, path);
  }
  tryRead(path: string): Promise<string | undefined> {
    return ops.tryRead(this.client, this.id, path);
  }
  exists(path: string): Promise<boolean> {
    return ops.exists(this.client, this.id, path);
  }
  write(path: string, value: string | Uint8Array): Promise<void> {
    return ops.write(this.client, this.id, path, value);
  }
  mkdir(path: string): Promise<void> {
    return ops.mkdir(this.client, this.id, path);
  }
  rm(path: string): Promise<void> {
    return ops.rm(this.client, this.id, path);
  }
  directory(path: string): Promise<string[]> {
    return ops.directory(this.client, this.id, path);
  }
  getPerms(path: string): Promise<Permission[]> {
    return ops.getPerms(this.client, this.id, path);
  }
  setPerms(path: string, perms: readonly (Permission | string)[]): Promise<void> {
    return ops.setPerms(this.client, this.id, path, perms);
  }

  /** Commits; rejects with XenstoreError code EAGAIN on a conflict. */
  async commit(): Promise<void> {
    return this.end(true);
  }
  async abort(): Promise<void> {
    return this.end(false);
  }
  private async end(commit: boolean): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.client.request(XsType.TRANSACTION_END, commit ? 'T\0' : 'F\0', this.id);
  }
}

/** Watch events as an async iterable; `close()` unwatches and ends the iteration. */
export class WatchStream implements AsyncIterable<WatchEvent> {
  private readonly queue: WatchEvent[] = [];
  private wake: (() => void) | undefined;
  private ended = false;

  constructor(
    private readonly client: XenstoreClient,
    readonly path: string,
    readonly token: string,
  ) {}

  /** @internal */
  push(ev: WatchEvent): void {
    if (this.ended) return;
    this.queue.push(ev);
    this.wake?.();
  }

  /** @internal */
  end(): void {
    this.ended = true;
    this.wake?.();
  }

  /** The next event, or undefined once closed; rejects after `timeoutMs` if given. */
  async next(timeoutMs?: number): Promise<WatchEvent | undefined> {
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    try {
      while (this.queue.length === 0 && !this.ended) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          if (timeoutMs !== undefined && !timer) {
            timer = setTimeout(() => {
              timedOut = true;
              resolve();
            }, timeoutMs);
          }
        });
        this.wake = undefined;
        if (timedOut) throw new Error(`xenstore: no event on watch ${this.path} within ${timeoutMs} ms`);
      }
    } finally {
      if (timer) clearTimeout(timer);
    }
    return this.queue.shift();
  }

  async close(): Promise<void> {
    if (this.ended) return;
    this.end();
    await this.client.unwatch(this);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<WatchEvent> {
    try {
      for (;;) {
        const ev = await this.next();
        if (!ev) return;
        yield ev;
      }
    } finally {
      await this.close().catch(() => {});
    }
  }
}

/** The operations once, parameterised by transaction id (0 = none). */
const ops = {
  read: (c: XenstoreClient, tx: number, path: string) => c.request(XsType.READ, `${path}\0`, tx, path),
  readString: async (c: XenstoreClient, tx: number, path: string) => bytesToString(await c.request(XsType.READ, `${path}\0`, tx, path)),
  tryRead: async (c: XenstoreClient, tx: number, path: string) => {
    try {
      return bytesToString(await c.request(XsType.READ, `${path}\0`, tx, path));
    } catch (e) {
      if (e instanceof XenstoreError && e.code === 'ENOENT') return undefined;
      throw e;
    }
  },
  exists: async (c: XenstoreClient, tx: number, path: string) => {
    try {
      await c.request(XsType.READ, `${path}\0`, tx, path);
      return true;
    } catch (e) {
      if (e instanceof XenstoreError && (e.code === 'ENOENT' || e.code === 'EACCES')) return false;
      throw e;
    }
  },
  write: async (c: XenstoreClient, tx: number, path: string, value: string | Uint8Array) => {
    const v = toBytes(value);
    const p = toBytes(`${path}\0`);
    const body = new Uint8Array(p.length + v.length);
    body.set(p);
    body.set(v, p.length);
    await c.request(XsType.WRITE, body, tx, path);
  },
  mkdir: async (c: XenstoreClient, tx: number, path: string) => {
    await c.request(XsType.MKDIR, `${path}\0`, tx, path);
  },
  rm: async (c: XenstoreClient, tx: number, path: string) => {
    await c.request(XsType.RM, `${path}\0`, tx, path);
  },
  directory: async (c: XenstoreClient, tx: number, path: string) => splitNul(await c.request(XsType.DIRECTORY, `${path}\0`, tx, path)),
  getPerms: async (c: XenstoreClient, tx: number, path: string) =>
    splitNul(await c.request(XsType.GET_PERMS, `${path}\0`, tx, path)).map(parsePermission),
  setPerms: async (c: XenstoreClient, tx: number, path: string, perms: readonly (Permission | string)[]) => {
    const list = perms.map((p) => (typeof p === 'string' ? formatPermission(parsePermission(p)) : formatPermission(p)));
    await c.request(XsType.SET_PERMS, `${path}\0${list.map((p) => p + '\0').join('')}`, tx, path);
  },
};
