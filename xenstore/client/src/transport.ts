/**
 * How the client's bytes reach xenstored: the unix socket (dom0's processes and tools; found
 * like libxenstore finds it: $XENSTORED_PATH, else $XENSTORED_RUNDIR/socket, else
 * /var/run/xenstored/socket) or, for guests, the xenstore ring page plus an event channel.
 */
import { connect } from 'node:net';
import { join } from 'node:path';
import type { EventChannel } from './event-channel.ts';
import { XenstoreRing } from './ring.ts';

export interface XsTransport {
  send(bytes: Uint8Array): void;
  /** Called with each chunk of bytes from the daemon. */
  onData: ((chunk: Uint8Array) => void) | undefined;
  /** Called once when the transport ends (with the reason if it failed). */
  onClose: ((err?: Error) => void) | undefined;
  close(): void;
}

/** Where libxenstore would look for the daemon's socket. */
export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.XENSTORED_PATH || join(env.XENSTORED_RUNDIR || '/var/run/xenstored', 'socket');
}

export function connectSocket(path: string, timeoutMs = 5000): Promise<XsTransport> {
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`xenstore: connecting to ${path} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    sock.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`xenstore: cannot connect to xenstored at ${path}: ${e.message} (is xenstored running? set XENSTORED_PATH)`));
    });
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.setNoDelay(true);
      let closed = false;
      const t: XsTransport = {
        onData: undefined,
        onClose: undefined,
        send: (b) => {
          sock.write(b);
        },
        close: () => {
          sock.destroy();
        },
      };
      sock.removeAllListeners('error');
      sock.on('error', (e) => {
        if (!closed) {
          closed = true;
          t.onClose?.(e);
        }
      });
      sock.on('close', () => {
        if (!closed) {
          closed = true;
          t.onClose?.();
        }
      });
      sock.on('data', (b: Buffer) => t.onData?.(b));
      resolve(t);
    });
  });
}

/**
 * The guest side of the xenstore ring: requests go into `req` as space allows, responses are
 * taken from `rsp`; each side kicks the other after every update.
 */
export class RingTransport implements XsTransport {
  onData: ((chunk: Uint8Array) => void) | undefined = undefined;
  onClose: ((err?: Error) => void) | undefined = undefined;
  private readonly out: Uint8Array[] = [];
  private readonly unbind: () => void;
  private closed = false;
  private pumping = false;
  private again = false;

  constructor(
    readonly ring: XenstoreRing,
    private readonly evtchn: EventChannel,
  ) {
    this.unbind = evtchn.bind(() => this.pump());
  }

  send(bytes: Uint8Array): void {
    if (this.closed) return;
    this.out.push(bytes);
    this.pump();
  }

  /** Moves bytes both ways; kicks the daemon if anything moved. */
  pump(): void {
    if (this.closed) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.again = false;
        this.pumpOnce();
      } while (this.again && !this.closed);
    } finally {
      this.pumping = false;
    }
  }

  private pumpOnce(): void {
    let moved = false;
    for (;;) {
      let progress = false;
      while (this.out.length) {
        const head = this.out[0]!;
        const n = this.ring.writeRequest(head);
        if (n < 0) return this.fail('the request ring indices are inconsistent');
        if (n === 0) break;
        progress = true;
        if (n === head.length) this.out.shift();
        else this.out[0] = head.subarray(n);
      }
      const got = this.ring.readResponse();
      if (got === null) return this.fail('the response ring indices are inconsistent');
      if (got.length) {
        progress = true;
        this.onData?.(got);
      }
      if (!progress) break;
      moved = true;
    }
    if (moved) this.evtchn.notify();
    if (this.ring.error !== 0) this.fail(`xenstored reported ring error ${this.ring.error}`);
  }

  private fail(why: string): void {
    if (this.closed) return;
    this.close();
    this.onClose?.(new Error(`xenstore ring: ${why}`));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unbind();
  }
}
