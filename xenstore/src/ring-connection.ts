/**
 * xenstored's side of a guest's xenstore ring page (the C daemon's `xenstored_domain.c`:
 * `readchn`/`writechn` and the reconnection handshake of docs/misc/xenstore-ring.txt).
 *
 * Everything on the page is written by the guest as far as we are concerned: indices are read
 * once per pass and checked (a gap above the ring size sets the page's error field to RINGIDX
 * and the connection stops being served), a frame over the payload limit sets PROTO, and a pass
 * moves at most a bounded number of bytes before yielding, so a guest can neither make the
 * daemon loop nor throw. Requests are not read while the guest has `maxOutstanding` replies or
 * events it has not taken.
 */
import {
  XENSTORE_CONNECTION,
  XENSTORE_ERROR,
  XENSTORE_RING_SIZE,
  XENSTORE_SERVER_FEATURE,
} from '@xenlab/ring-buffers';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { GuestRingFile, type EventChannel, type XenstoreRing } from '@xenlab/xenstore-client';
import type { Connection } from './connection.ts';
import type { RingAttacher, Xenstored } from './xenstored.ts';

/** Bytes moved per direction in one pass before yielding to the event loop. */
const PASS_BUDGET = 16 * XENSTORE_RING_SIZE;

export interface RingConnectionCounters {
  passes: number;
  bytesIn: number;
  bytesOut: number;
  notifications: number;
}

export class RingConnection {
  readonly conn: Connection;
  readonly counters: RingConnectionCounters = { passes: 0, bytesIn: 0, bytesOut: 0, notifications: 0 };
  private readonly out: Array<{ bytes: Uint8Array; messages: number }> = [];
  private outMessages = 0;
  private readonly unbind: () => void;
  private servicing = false;
  private again = false;
  private dead = false;

  constructor(
    private readonly xs: Xenstored,
    domid: number,
    readonly ring: XenstoreRing,
    private readonly evtchn: EventChannel,
    /** Runs when xenstored forgets the connection (RELEASE, shutdown): unmap the page here. */
    private readonly onStop?: () => void,
  ) {
    this.conn = xs.connect(
      {
        write: (bytes, messages) => {
          this.out.push({ bytes, messages });
          this.outMessages += messages;
          this.service();
        },
        close: () => this.stop(),
        outstanding: () => this.outMessages,
      },
      { domid, socket: false, label: `domain ${domid} (ring)` },
    );
    ring.serverFeatures = XENSTORE_SERVER_FEATURE.RECONNECTION | XENSTORE_SERVER_FEATURE.ERROR;
    this.unbind = evtchn.bind(() => this.service());
    // The guest may have queued requests before we were introduced.
    this.service();
  }

  /** One pass over the page; re-runs itself if kicked meanwhile. Never throws. */
  service(): void {
    if (this.dead) return;
    if (this.servicing) {
      this.again = true;
      return;
    }
    this.servicing = true;
    try {
      do {
        this.again = false;
        this.pass();
      } while (this.again && !this.dead);
    } catch (e) {
      this.xs.log(`${this.conn.label}: ring service failed: ${(e as Error)?.stack ?? e}`);
      this.fail(XENSTORE_ERROR.COMM);
    } finally {
      this.servicing = false;
    }
  }

  private pass(): void {
    this.counters.passes++;
    const ring = this.ring;
    if (ring.connection === XENSTORE_CONNECTION.RECONNECT) return this.reconnect();
    if (ring.error !== XENSTORE_ERROR.NONE) return;
    let moved = false;
    let budgetOut = PASS_BUDGET;
    let budgetIn = PASS_BUDGET;
    for (;;) {
      let progress = false;
      // Replies and events first: they make room for more requests.
      while (this.out.length && budgetOut > 0) {
        const head = this.out[0]!;
        const n = ring.writeResponse(head.bytes);
        if (n < 0) return this.fail(XENSTORE_ERROR.RINGIDX);
        if (n === 0) break;
        progress = true;
        budgetOut -= n;
        this.counters.bytesOut += n;
        if (n === head.bytes.length) {
          this.out.shift();
          this.outMessages -= head.messages;
        } else {
          head.bytes = head.bytes.subarray(n);
        }
      }
      if (this.conn.deferred.length) this.xs.pump(this.conn);
      if (budgetIn > 0 && this.conn.deferred.length === 0 && this.xs.canServe(this.conn)) {
        const got = ring.readRequest();
        if (got === null) return this.fail(XENSTORE_ERROR.RINGIDX);
        if (got.length) {
          progress = true;
          budgetIn -= got.length;
          this.counters.bytesIn += got.length;
          this.xs.receive(this.conn, got);
          if (this.conn.closed) {
            // The frame was undecodable (payload over the limit): the stream cannot resync.
            return this.fail(XENSTORE_ERROR.PROTO);
          }
          // Replies are queued by the connection at the end of this turn, then written.
          this.conn.flush();
        }
      }
      if (!progress) break;
      moved = true;
      if (budgetIn <= 0 && budgetOut <= 0) {
        setImmediate(() => this.service());
        break;
      }
    }
    if (moved) this.kick();
  }

  private kick(): void {
    this.counters.notifications++;
    this.evtchn.notify();
  }

  /** The guest asked for a fresh start: forget its watches, transactions and half-read bytes. */
  private reconnect(): void {
    this.xs.resetConnection(this.conn);
    this.conn.deferred.length = 0;
    this.conn.decoder.reset();
    this.out.length = 0;
    this.outMessages = 0;
    this.ring.error = XENSTORE_ERROR.NONE;
    this.ring.resetIndices();
    this.kick();
  }

  private fail(code: number): void {
    this.ring.error = code;
    this.xs.log(`${this.conn.label}: ring error ${code}; no longer serving it until it reconnects`);
    this.kick();
  }

  private stop(): void {
    if (this.dead) return;
    this.dead = true;
    this.unbind();
    this.onStop?.();
  }
}

/** Connects a guest's ring to xenstored (what XS_INTRODUCE does once the page is mapped). */
export function attachRing(xs: Xenstored, domid: number, ring: XenstoreRing, evtchn: EventChannel, onStop?: () => void): RingConnection {
  return new RingConnection(xs, domid, ring, evtchn, onStop);
}

/**
 * The stand-in for mapping a guest's page until the hypervisor issue: XS_INTRODUCE of domain
 * `d` maps `<dir>/domain-<d>.xsring` (a `GuestRingFile` the domain builder created).
 */
export function ringFileAttacher(dir: string, spinUs = 0): RingAttacher {
  return (xs, dom) => {
    const path = join(dir, `domain-${dom.domid}.xsring`);
    if (!existsSync(path)) {
      xs.log(`domain ${dom.domid}: no ring file ${path}; introduced without a ring`);
      return undefined;
    }
    const file = GuestRingFile.open(path);
    const rc = new RingConnection(xs, dom.domid, file.ring, file.serverEventChannel(100, spinUs), () => {
      // Let a pending futex wait (bounded by the poll interval) finish before unmapping.
      setTimeout(() => file.close(), 250).unref();
    });
    return rc.conn;
  };
}
