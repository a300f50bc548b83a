/**
 * Test harness: an in-process xenstored on a unix socket in a temp directory, and a raw xs_wire
 * client that sends arbitrary frames (including broken ones) and waits, with a bound, for replies.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XsFrameDecoder, XsType, encodeMessage, splitNul, bytesToString, type XsMessage } from '@xenlab/xen-public';
import { SocketServer } from '../socket-server.ts';
import { Xenstored, type XenstoredOptions } from '../xenstored.ts';
import type { Connection } from '../connection.ts';

export interface Daemon {
  xs: Xenstored;
  dir: string;
  path: string;
  roPath: string;
  logs: string[];
  stop(): Promise<void>;
}

export async function startDaemon(opts: XenstoredOptions = {}): Promise<Daemon> {
  const dir = mkdtempSync(join(tmpdir(), 'xenstored-test-'));
  const logs: string[] = [];
  const xs = new Xenstored({ log: (l) => logs.push(l), ...opts });
  const path = join(dir, 'socket');
  const roPath = join(dir, 'socket_ro');
  const rw = await SocketServer.listen(xs, path);
  const ro = await SocketServer.listen(xs, roPath, { readOnly: true });
  return {
    xs,
    dir,
    path,
    roPath,
    logs,
    async stop() {
      xs.close();
      await rw.close();
      await ro.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves `p`, or rejects after `ms` with `what` in the message. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]);
}

/** A raw xs_wire client: subclasses say how bytes travel. */
export abstract class WireClient {
  private readonly dec = new XsFrameDecoder(1 << 20);
  private readonly replies: XsMessage[] = [];
  readonly events: XsMessage[] = [];
  private waiters: Array<() => void> = [];
  closed = false;

  protected feed(b: Uint8Array): void {
    for (const m of this.dec.push(b)) (m.type === XsType.WATCH_EVENT ? this.events : this.replies).push(m);
    this.wake();
  }

  protected markClosed(): void {
    this.closed = true;
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  protected async until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
    await within(
      (async () => {
        while (!cond()) {
          if (this.closed) throw new Error(`connection closed while waiting for ${what}`);
          await new Promise<void>((r) => this.waiters.push(r));
        }
      })(),
      ms,
      what,
    );
  }

  abstract sendRaw(bytes: Uint8Array): void;

  send(type: number, payload: Uint8Array | string, txId = 0, reqId = 0): void {
    this.sendRaw(encodeMessage(type, reqId, txId, payload));
  }

  async reply(ms = 5000): Promise<XsMessage> {
    await this.until(() => this.replies.length > 0, 'a reply', ms);
    return this.replies.shift()!;
  }

  get pendingReplies(): number {
    return this.replies.length;
  }

  /** Sends and returns the reply; `text` is the payload as a string, `error` the Xen error name. */
  async req(type: number, payload: Uint8Array | string, txId = 0, reqId = 0): Promise<XsMessage & { text: string; error?: string }> {
    this.send(type, payload, txId, reqId);
    const m = await this.reply();
    const text = bytesToString(m.payload);
    return { ...m, text, ...(m.type === XsType.ERROR ? { error: splitNul(m.payload)[0] } : {}) };
  }

  async event(ms = 5000): Promise<[string, string]> {
    await this.until(() => this.events.length > 0, 'a watch event', ms);
    const [p, t] = splitNul(this.events.shift()!.payload);
    return [p!, t!];
  }
}

/** A client on the daemon's unix socket (privileged, like dom0's tools). */
export class RawClient extends WireClient {
  private closedP: Promise<void>;

  private constructor(readonly sock: Socket) {
    super();
    sock.on('data', (b: Buffer) => this.feed(b));
    this.closedP = new Promise((resolve) =>
      sock.on('close', () => {
        this.markClosed();
        resolve();
      }),
    );
    sock.on('error', () => {});
  }

  static open(path: string): Promise<RawClient> {
    return within(
      new Promise((resolve, reject) => {
        const s = connect(path, () => resolve(new RawClient(s)));
        s.once('error', reject);
      }),
      5000,
      `connect ${path}`,
    );
  }

  sendRaw(bytes: Uint8Array): void {
    this.sock.write(bytes);
  }

  async waitClosed(ms = 5000): Promise<void> {
    await within(this.closedP, ms, 'the daemon to drop the connection');
  }

  close(): void {
    this.sock.destroy();
  }
}

/**
 * An in-process connection as a guest domain (unprivileged), bypassing any transport: what the
 * ring transport delivers, minus the ring. `readable` = false models a guest not reading replies.
 */
export class DomainClient extends WireClient {
  readonly conn: Connection;
  readable = true;
  private held: Uint8Array[] = [];
  private heldMessages = 0;

  constructor(readonly xs: Xenstored, domid: number) {
    super();
    this.conn = xs.connect(
      {
        write: (b, n) => {
          if (this.readable) return this.feed(b);
          this.held.push(b);
          this.heldMessages += n;
        },
        close: () => this.markClosed(),
        outstanding: () => this.heldMessages,
      },
      { domid, socket: false },
    );
  }

  sendRaw(bytes: Uint8Array): void {
    this.xs.receive(this.conn, bytes);
  }

  /** Starts reading again: delivers what was held. */
  drain(): void {
    this.readable = true;
    this.heldMessages = 0;
    for (const b of this.held.splice(0)) this.feed(b);
    this.xs.pump(this.conn);
  }
}
