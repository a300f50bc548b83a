/**
 * The hot path of a bound interdomain event channel (ARCHITECTURE.md's "Event channels"),
 * both ends, with no hypervisor round trip.
 *
 * Sending (`EvtchnNotifier`): the hypervisor set the channel up and handed this end an
 * `EvtchnNotify`; the sender checks that its port's generation word (in its own domain's event
 * page, written only by the hypervisor) still matches, then does Xen's 2-level "set pending" on
 * the remote shared_info page and rings the remote doorbell if the port became pending. When
 * the check fails (the channel was closed, re-bound or moved to another vCPU), the caller falls
 * back to EVTCHNOP_send, which the hypervisor validates.
 *
 * Receiving (`EvtchnWaiter`): take one's own pending ports; spin watching their pending words,
 * then sleep on the doorbell (docs/hypervisor.md, "Event channels and delivery").
 *
 * The doorbell is injected (`doorbellAt`, `DoorbellWaitLike`) because this library imports no
 * other xenlab project; pass `Doorbell`s from @xenlab/ring-buffers.
 */
import type { EvtchnNotify } from './hypercall.ts';
import { MarkResult, SharedInfoPage, shared_info } from './shared-info.ts';

export interface DoorbellLike {
  ring(): void;
}

export class EvtchnNotifier {
  private readonly bound: Int32Array | undefined;
  private readonly remote: SharedInfoPage;
  private readonly bell: DoorbellLike;
  /** `notify`'s fields the hot path reads, as own fields of this object. */
  private readonly generation: number;
  private readonly remoteVcpu: number;
  private readonly remotePort: number;
  /** Counters: sends done on the fast path, ones that needed the hypercall, doorbell rings. */
  readonly stats = { fast: 0, fallback: 0, rings: 0 };

  constructor(
    memory: ArrayBuffer,
    readonly notify: EvtchnNotify,
    doorbellAt: (buffer: ArrayBuffer, byteOffset: number) => DoorbellLike,
  ) {
    this.bound = notify.bound_addr ? new Int32Array(memory, notify.bound_addr, 1) : undefined;
    this.remote = new SharedInfoPage(memory, notify.shared_info_addr);
    this.bell = doorbellAt(memory, notify.doorbell_addr);
    this.generation = notify.generation;
    this.remoteVcpu = notify.remote_vcpu;
    this.remotePort = notify.remote_port;
  }

  /** Still bound as when `notify` was issued? */
  get valid(): boolean {
    return this.bound !== undefined && Atomics.load(this.bound, 0) === this.generation;
  }

  /** Delivers directly; false means "use EVTCHNOP_send instead". */
  trySend(): boolean {
    if (!this.valid) {
      this.stats.fallback++;
      return false;
    }
    this.stats.fast++;
    // Ring whenever the port became pending: the far end may be one of several processes of
    // its domain, each consuming only its own ports (SharedInfoPage.consume).
    if (this.remote.markPending(this.remoteVcpu, this.remotePort) !== MarkResult.already) {
      this.stats.rings++;
      this.bell.ring();
    }
    return true;
  }
}

/** What `EvtchnWaiter` needs of a doorbell (`Doorbell` from @xenlab/ring-buffers). */
export interface DoorbellWaitLike {
  readonly seq: number;
  /** Blocks until `seq` differs from `seen` or `timeoutMs` passes, spinning at most `spinUs` first. */
  wait(seen: number, timeoutMs?: number, spinUs?: number): number;
}

/**
 * The receiving end of the hot path, for a process that consumes its own ports (`consume`
 * semantics: Xen's pending bits are taken as ever, the selector and upcall_pending are left
 * to the domain's kernel, if any). `wait()` takes this process's pending unmasked ports and,
 * if there are none, waits in two phases with the doorbell's spin policy:
 *
 *   spin (at most spinUs)   watch the evtchn_pending words of our own ports, nothing else
 *   sleep                   seen = bell.seq; take; futex-wait on the doorbell until it moves
 *
 * While the receiver spins it watches the line it has to read and clear anyway. A sender sets
 * the pending bit before it rings, so the receiver sees the event after one cache-line
 * transfer instead of two (the doorbell line, then the pending line), and since it no longer
 * reads the doorbell line while awake, the sender's ring finds that line still in its own
 * cache. A sleeping receiver costs exactly what the doorbell does: senders ring whenever a
 * port becomes pending, and capturing `seen` before taking means no event is lost in between.
 */
export class EvtchnWaiter {
  private readonly u32: Uint32Array;
  /** Indices (in `u32`) of the evtchn_pending words holding our ports, and our bits in each. */
  private readonly idx: number[] = [];
  private readonly bits: number[] = [];
  private readonly ports: number[];
  /** Counters: waits satisfied at once, while spinning, after sleeping on the doorbell. */
  readonly stats = { immediate: 0, spinHits: 0, sleeps: 0 };

  constructor(
    readonly page: SharedInfoPage,
    private readonly bell: DoorbellWaitLike,
    ports: Iterable<number>,
  ) {
    this.u32 = page.u32;
    this.ports = [...new Set(ports)];
    const base = shared_info.fields.evtchn_pending.offset / 4;
    for (const port of this.ports) {
      const w = base + (port >>> 5);
      let i = this.idx.indexOf(w);
      if (i < 0) {
        i = this.idx.length;
        this.idx.push(w);
        this.bits.push(0);
      }
      this.bits[i]! |= 1 << (port & 31);
    }
  }

  /** Takes the pending unmasked ports of this waiter without waiting. */
  poll(): number[] {
    const out: number[] = [];
    for (const port of this.ports) if (this.page.take(port)) out.push(port);
    return out;
  }

  /** Is any of our ports pending (masked or not)? Loads only: the spin's one check. */
  private anyPending(): boolean {
    const u32 = this.u32;
    for (let i = 0; i < this.idx.length; i++) if ((Atomics.load(u32, this.idx[i]!) & this.bits[i]!) !== 0) return true;
    return false;
  }

  /**
   * Takes this waiter's pending unmasked ports, waiting until there is one: spinning for at
   * most `spinUs`, then asleep on the doorbell. Returns [] if `timeoutMs` (negative: no limit)
   * passes first.
   */
  wait(timeoutMs = -1, spinUs = 50): number[] {
    let got: number[];
    if (this.anyPending()) {
      got = this.poll();
      if (got.length) {
        this.stats.immediate++;
        return got;
      }
    }
    const start = performance.now();
    if (spinUs > 0) {
      const spinEnd = start + (timeoutMs >= 0 ? Math.min(spinUs / 1000, timeoutMs) : spinUs / 1000);
      for (;;) {
        let hit = false;
        for (let k = 0; k < 128 && !hit; k++) hit = this.anyPending();
        // A port pending but masked is a hit that takes nothing: the spin goes on, bounded.
        if (hit) {
          got = this.poll();
          if (got.length) {
            this.stats.spinHits++;
            return got;
          }
        }
        if (performance.now() >= spinEnd) break;
      }
    }
    this.stats.sleeps++;
    for (;;) {
      const seen = this.bell.seq;
      got = this.poll();
      if (got.length) return got;
      let remaining = -1;
      if (timeoutMs >= 0) {
        remaining = timeoutMs - (performance.now() - start);
        if (remaining <= 0) return [];
      }
      this.bell.wait(seen, remaining, 0);
    }
  }
}
