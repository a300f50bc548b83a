/**
 * One client of xenstored (`struct connection` in the C daemon): a unix-socket client (dom0's
 * tools, privileged) or a guest's ring. It owns the client's watches and transactions, decodes
 * its byte stream into messages and queues what goes back. The transport is a `ConnectionSink`,
 * so the same core serves sockets, ring pages and in-process tests.
 */
import { XsFrameDecoder, XS_HEADER_BYTES, encodeHeader, toBytes, type XsMessage } from '@xenlab/xen-public';
import type { Caller } from './perms.ts';
import type { Quotas } from './quota.ts';
import type { StoreCaller, Transaction } from './store.ts';

export interface ConnectionSink {
  /** Queues bytes holding `messages` whole messages for the peer. */
  write(bytes: Uint8Array, messages: number): void;
  /** Drops the transport; the daemon has already forgotten the connection. */
  close(): void;
  /** Messages queued and not yet taken by the peer (for the outstanding/event quotas). */
  outstanding(): number;
}

export interface Watch {
  readonly conn: Connection;
  /** The path as the client sent it (relative watches get relative event paths). */
  readonly path: string;
  readonly abs: string;
  readonly token: string;
  readonly relative: boolean;
}

export interface ConnectionStats {
  requests: number;
  errors: number;
  eventsSent: number;
  eventsDropped: number;
}

export interface ConnectionOptions {
  domid: number;
  /** Unix-socket clients are privileged, as in the C xenstored. */
  socket: boolean;
  readOnly?: boolean;
  label?: string;
}

let nextConnId = 1;

export class Connection implements StoreCaller, Caller {
  readonly id = nextConnId++;
  readonly domid: number;
  readonly socket: boolean;
  readonly readOnly: boolean;
  readonly label: string;
  target: number | undefined = undefined;
  readonly watches = new Map<string, Watch>();
  readonly txns = new Map<number, Transaction>();
  private lastTxId = 0;
  /** Payloads may view the transport's chunks (fresh per read); handlers copy what they keep. */
  readonly decoder = new XsFrameDecoder(undefined, false);
  /** Decoded requests not yet run (held back by the outstanding-requests quota). */
  readonly deferred: XsMessage[] = [];
  readonly stats: ConnectionStats = { requests: 0, errors: 0, eventsSent: 0, eventsDropped: 0 };
  closed = false;
  private batch: Uint8Array[] = [];
  private batchBytes = 0;
  private flushQueued = false;

  constructor(
    private readonly sink: ConnectionSink,
    readonly quotas: Quotas,
    opts: ConnectionOptions,
  ) {
    this.domid = opts.domid;
    this.socket = opts.socket;
    this.readOnly = opts.readOnly ?? false;
    this.label = opts.label ?? (opts.socket ? `socket#${this.id}${this.readOnly ? ' (ro)' : ''}` : `domain ${opts.domid}`);
  }

  get privileged(): boolean {
    return this.socket || this.domid === 0;
  }

  /** Allocates a transaction id: per connection, never 0, skipping ids in use. */
  allocTxId(): number {
    do {
      this.lastTxId = (this.lastTxId + 1) >>> 0;
    } while (this.lastTxId === 0 || this.txns.has(this.lastTxId));
    return this.lastTxId;
  }

  /** Messages queued for the peer, including this batch. */
  outstanding(): number {
    return this.sink.outstanding() + this.batch.length;
  }

  send(type: number, reqId: number, txId: number, payload: Uint8Array | string): void {
    if (this.closed) return;
    const body = toBytes(payload);
    const frame = new Uint8Array(XS_HEADER_BYTES + body.length);
    encodeHeader({ type, reqId, txId, len: body.length }, frame, 0);
    frame.set(body, XS_HEADER_BYTES);
    this.batch.push(frame);
    this.batchBytes += frame.length;
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => this.flush());
    }
  }

  /** Hands the batch to the transport as one write (pipelined requests cost one syscall). */
  flush(): void {
    this.flushQueued = false;
    if (this.closed || this.batch.length === 0) return;
    let out: Uint8Array;
    if (this.batch.length === 1) {
      out = this.batch[0]!;
    } else {
      out = new Uint8Array(this.batchBytes);
      let at = 0;
      for (const f of this.batch) {
        out.set(f, at);
        at += f.length;
      }
    }
    const n = this.batch.length;
    this.batch.length = 0;
    this.batchBytes = 0;
    this.sink.write(out, n);
    if (this.deferred.length > 0) this.onFlushed?.();
  }

  /** Set by the daemon: runs held-back requests once output has moved. */
  onFlushed: (() => void) | undefined = undefined;

  /** Closes the transport (the daemon's `dropConnection` forgets it first). */
  shutdown(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.sink.close();
  }
}

/** Watches are identified by absolute path and token. */
export function watchKey(abs: string, token: string): string {
  return `${abs}\0${token}`;
}
