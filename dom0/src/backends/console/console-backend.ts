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
import { XENCONS_IN_BYTES, XENCONS_OUT_BYTES, xenconsInterface } from '@xenlab/ring-buffers';

const IN_CONS = xenconsInterface.offsetOf('inCons') / 4;
const IN_PROD = xenconsInterface.offsetOf('inProd') / 4;
const OUT_CONS = xenconsInterface.offsetOf('outCons') / 4;
const OUT_PROD = xenconsInterface.offsetOf('outProd') / 4;

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
  private readonly idx: Uint32Array;
  private readonly inRing: Uint8Array;
  private readonly outRing: Uint8Array;
  private logFd: number;
  private pendingInput: Uint8Array[] = [];
  private pendingBytes = 0;
  private warned = false;

  constructor(private readonly o: ConsoleBackendOptions) {
    this.idx = new Uint32Array(o.buffer, o.offset, xenconsInterface.size / 4);
    this.inRing = new Uint8Array(o.buffer, o.offset + xenconsInterface.offsetOf('in'), XENCONS_IN_BYTES);
    this.outRing = new Uint8Array(o.buffer, o.offset + xenconsInterface.offsetOf('out'), XENCONS_OUT_BYTES);
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
    const cons = Atomics.load(this.idx, OUT_CONS);
    const prod = Atomics.load(this.idx, OUT_PROD);
    const n = (prod - cons) >>> 0;
    if (n === 0) return 0;
    if (n > XENCONS_OUT_BYTES) {
      // A guest claiming more than the ring holds: skip to its producer, keep serving.
      this.bad(`out_prod ${prod} is ${n} bytes past out_cons ${cons} (ring holds ${XENCONS_OUT_BYTES}); output discarded`);
      Atomics.store(this.idx, OUT_CONS, prod);
      return 1;
    }
    const bytes = new Uint8Array(n);
    for (let i = 0; i < n; i++) bytes[i] = this.outRing[(cons + i) & (XENCONS_OUT_BYTES - 1)]!;
    Atomics.store(this.idx, OUT_CONS, prod);
    if (this.logFd >= 0) {
      try {
        writeSync(this.logFd, bytes);
      } catch (e) {
        if (this.counters.logErrors++ === 0) this.o.log?.(`console dom${this.o.domid}: writing ${this.o.logPath} failed: ${(e as Error).message}`);
      }
    }
    this.counters.bytesOut += n;
    this.o.onOutput?.(bytes);
    return n;
  }

  private deliverInput(): number {
    if (this.pendingBytes === 0) return 0;
    const cons = Atomics.load(this.idx, IN_CONS);
    let prod = Atomics.load(this.idx, IN_PROD);
    const used = (prod - cons) >>> 0;
    if (used > XENCONS_IN_BYTES) {
      this.bad(`in_cons ${cons} is ${used} bytes behind in_prod ${prod} (ring holds ${XENCONS_IN_BYTES}); input held back`);
      return 0;
    }
    let room = XENCONS_IN_BYTES - used;
    let moved = 0;
    while (room > 0 && this.pendingInput.length > 0) {
      const chunk = this.pendingInput[0]!;
      const n = Math.min(room, chunk.length);
      for (let i = 0; i < n; i++) this.inRing[(prod + i) & (XENCONS_IN_BYTES - 1)] = chunk[i]!;
      prod = (prod + n) >>> 0;
      room -= n;
      moved += n;
      if (n === chunk.length) this.pendingInput.shift();
      else this.pendingInput[0] = chunk.subarray(n);
    }
    // Atomics.store orders the bytes before the index the guest reads.
    Atomics.store(this.idx, IN_PROD, prod);
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
