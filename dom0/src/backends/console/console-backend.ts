/**
 * The console backend's core (the xenconsoled role): one `xencons_interface` page per guest
 * (io/console.h, fact sheet §4.1) — bytes the guest writes to `out` are appended to the
 * domain's log file from the very first byte and handed to any attached `xl console` client;
 * input from a client goes into `in`. Indices run freely; the guest owns `out_prod` and
 * `in_cons`, this side `out_cons` and `in_prod`, and each is read once per pass and checked: a
 * guest whose index claims more bytes than the ring holds gets its output discarded (and logged
 * once), never a loop and never a read outside the page.
 *
 * The wiring (mapping the page, binding the event channel, the pty or socket for `xl console`)
 * lives outside; `kick()` is called when the event channel fires.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { BAD_INDEX, ByteRing, XENCONS_IN_BYTES, XENCONS_OUT_BYTES, xenconsInterface as L } from '@xenlab/ring-buffers';

export interface ConsoleBackendCounters {
  bytesOut: number;
  bytesIn: number;
  notificationsSent: number;
  /** Passes that found an impossible index (the guest's out_prod or in_cons). */
  badIndex: number;
  /** Input bytes dropped because the pending-input buffer was full. */
  inputDropped: number;
  /** Writes to the log file that failed (disk full, say); output still reaches the client. */
  logErrors: number;
}

export interface ConsoleBackendOptions {
  buffer: ArrayBuffer;
  /** Offset of the `xencons_interface` page in `buffer` (4-byte aligned). */
  offset: number;
  domid: number;
  /** The domain's log file; opened for append now, so nothing the guest writes is missed. */
  logPath: string;
  /** Sends on the console event channel. */
  notify: () => void;
  /** Output bytes, for an attached `xl console` client. */
  onOutput?: (bytes: Uint8Array) => void;
  log?: (line: string) => void;
  /** Input waiting for room in `in` is capped at this many bytes (default 64 KiB). */
  maxPendingInput?: number;
}

export class ConsoleBackend {
  readonly counters: ConsoleBackendCounters = { bytesOut: 0, bytesIn: 0, notificationsSent: 0, badIndex: 0, inputDropped: 0, logErrors: 0 };
  /** Guest to backend: we consume. */
  private readonly out: ByteRing;
  /** Backend to guest: we produce. */
  private readonly in: ByteRing;
  private logFd: number;
  private pendingInput: Uint8Array[] = [];
  private pendingBytes = 0;
  private warned = false;

  constructor(private readonly o: ConsoleBackendOptions) {
    const at = (f: Parameters<typeof L.offsetOf>[0]) => o.offset + L.offsetOf(f);
    this.out = new ByteRing(o.buffer, at('out'), XENCONS_OUT_BYTES, at('outCons'), at('outProd'));
    this.in = new ByteRing(o.buffer, at('in'), XENCONS_IN_BYTES, at('inCons'), at('inProd'));
    this.logFd = openSync(o.logPath, 'a');
  }

  /** The event channel fired: drain output, then deliver pending input. */
  kick(): void {
    const out = this.drainOutput();
    const delivered = this.deliverInput();
    if (out > 0 || delivered > 0) {
      this.counters.notificationsSent++;
      this.o.notify();
    }
  }

  /** Input for the guest (from `xl console`); delivered now if there is room, else on later kicks. */
  input(bytes: Uint8Array): void {
    const max = this.o.maxPendingInput ?? 65536;
    const take = Math.min(bytes.length, max - this.pendingBytes);
    if (take < bytes.length) this.counters.inputDropped += bytes.length - take;
    if (take > 0) {
      this.pendingInput.push(bytes.slice(0, take));
      this.pendingBytes += take;
    }
    if (this.deliverInput() > 0) {
      this.counters.notificationsSent++;
      this.o.notify();
    }
  }

  close(): void {
    if (this.logFd >= 0) closeSync(this.logFd);
    this.logFd = -1;
  }

  private drainOutput(): number {
    const bytes = this.out.read();
    if (bytes === null) {
      // A guest claiming more than the ring holds: skip to its producer, keep serving.
      this.bad(`out_prod ${this.out.prod} is past out_cons ${this.out.cons} by more than the ring's ${XENCONS_OUT_BYTES} bytes; output discarded`);
      this.out.skipToProducer();
      return 1;
    }
    if (bytes.length === 0) return 0;
    if (this.logFd >= 0) {
      try {
        writeSync(this.logFd, bytes);
      } catch (e) {
        if (this.counters.logErrors++ === 0) this.o.log?.(`console dom${this.o.domid}: writing ${this.o.logPath} failed: ${(e as Error).message}`);
      }
    }
    this.counters.bytesOut += bytes.length;
    this.o.onOutput?.(bytes);
    return bytes.length;
  }

  private deliverInput(): number {
    let moved = 0;
    while (this.pendingInput.length > 0) {
      const chunk = this.pendingInput[0]!;
      const n = this.in.write(chunk);
      if (n === BAD_INDEX) {
        this.bad(`in_cons ${this.in.cons} is behind in_prod ${this.in.prod} by more than the ring's ${XENCONS_IN_BYTES} bytes; input held back`);
        break;
      }
      if (n === 0) break;
      moved += n;
      if (n === chunk.length) this.pendingInput.shift();
      else this.pendingInput[0] = chunk.subarray(n);
    }
    this.pendingBytes -= moved;
    this.counters.bytesIn += moved;
    return moved;
  }

  private bad(why: string): void {
    this.counters.badIndex++;
    if (!this.warned) {
      this.warned = true;
      this.o.log?.(`console dom${this.o.domid}: ${why}`);
    }
  }
}
