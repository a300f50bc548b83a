/**
 * Real event channels for a process acting for a domain (the role of `/dev/xen/evtchn` in a
 * Linux domain): the process binds ports through its hypercall connection, then waits on its
 * domain's doorbell and takes only its own ports' events (`SharedInfoPage.consume`), since
 * several processes may act for one domain (docs/hypervisor.md, "Event channels and delivery").
 * Sending uses the hypervisor's fast path (`EvtchnNotifier`) when the channel was bound here,
 * else `EVTCHNOP_send`.
 *
 * `eventChannel(port)` adapts one port to the xenstore ring's `EventChannel` interface, which is
 * how xenstored serves a guest ring and how a PV kernel talks to xenstored over its own.
 */
import { Doorbell, envMicros, lookEachTurn } from '@xenlab/ring-buffers';
import { EvtchnNotifier, SharedInfoPage, type EvtchnNotify, type HypercallClient } from '@xenlab/xen-public';
import type { EventChannel } from './event-channel.ts';

/**
 * The adaptive polling window (the policy of KVM's halt polling, in our words), on its own so
 * it can be tested without clocks: after a sleep that an event ended `idleMs` after the last
 * activity, a gap within `maxMs` doubles the window (polling that long would have caught it),
 * a longer one halves it, down to 0 (no polling) once it falls below a quarter of the start.
 */
export class PollWindow {
  windowMs: number;
  grown = 0;
  shrunk = 0;

  constructor(
    readonly startMs: number,
    readonly maxMs: number,
  ) {
    this.windowMs = startMs;
  }

  /** A sleep ended by an event, `idleMs` after the last activity. */
  slept(idleMs: number): void {
    if (this.startMs <= 0) return;
    if (idleMs > this.maxMs) {
      if (this.windowMs > 0) {
        this.windowMs = this.windowMs / 2 < this.startMs / 4 ? 0 : this.windowMs / 2;
        this.shrunk++;
      }
    } else if (this.windowMs < this.maxMs) {
      this.windowMs = Math.min(this.maxMs, Math.max(this.startMs, this.windowMs * 2));
      this.grown++;
    }
  }
}

export class DomainEvents {
  /**
   * Adaptive busy polling (the policy of KVM's halt polling, in our words): after handling or
   * sending an event the loop keeps looking at the doorbell for a window before it sleeps on the
   * futex. A wait that ended in sleep but came within `maxUs` doubles the window (polling that
   * long would have caught it, saving a wake-up: ~45 µs for a sleeping process here, ~100 µs
   * through a libuv pool thread); a wait longer than `maxUs` halves it (polling cannot win there,
   * only burn a core another process may need). So a process in a request/response rhythm
   * with a peer polls about as long as the peer takes to answer, and an idle one not at all.
   * XENLAB_EVTCHN_POLL_US sets the starting window (0: never poll), XENLAB_EVTCHN_POLL_MAX_US the bound.
   */
  static defaultPoll = { startUs: envMicros('XENLAB_EVTCHN_POLL_US', 50), maxUs: envMicros('XENLAB_EVTCHN_POLL_MAX_US', 1000) };

  private readonly handlers = new Map<number, () => void>();
  private readonly bell: Doorbell;
  private readonly shared: SharedInfoPage;
  private running = true;
  private readonly loop: Promise<void>;
  readonly counters = { wakeups: 0, events: 0, sends: 0, slowSends: 0, pollHits: 0, pollMisses: 0 };
  /** When this process last handled or sent an event (performance.now()). */
  private lastActive = -Infinity;
  /** The polling window (ms; start 0 turns polling off). */
  readonly window: PollWindow;

  /** `memory`: the machine-memory file mapped by this process. */
  constructor(
    private readonly hc: HypercallClient,
    private readonly memory: ArrayBuffer,
    private readonly pollMs = 200,
    /**
     * `scan`: this process is its domain's only kernel (a PV shim): take every pending port the
     * way a guest's upcall handler does, clearing `evtchn_upcall_pending`, so the hypervisor sees
     * no event still due when the vCPU halts. Otherwise take only our own ports (`consume`).
     */
    private readonly opts: {
      scan?: boolean;
      /**
       * Busy polling after activity (see `defaultPoll`): one look at the doorbell per turn of the
       * event loop, so I/O, timers and promises run in between. `startUs` 0: never poll.
       */
      poll?: { startUs?: number; maxUs?: number };
    } = {},
  ) {
    const startMs = Math.max(0, opts.poll?.startUs ?? DomainEvents.defaultPoll.startUs) / 1000;
    this.window = new PollWindow(startMs, Math.max(startMs, (opts.poll?.maxUs ?? DomainEvents.defaultPoll.maxUs) / 1000));
    this.bell = new Doorbell(memory, hc.info.doorbell_addr);
    this.shared = new SharedInfoPage(memory, hc.info.shared_info_frame * 4096);
    this.loop = this.run();
  }

  /** Runs `handler` on each event on `port` (coalesced); returns unbind (the port stays open). */
  on(port: number, handler: () => void): () => void {
    this.handlers.set(port, handler);
    // An event may already be pending (bind_interdomain sets the new port pending).
    queueMicrotask(() => this.poll());
    return () => {
      if (this.handlers.get(port) === handler) this.handlers.delete(port);
    };
  }

  /** A sender for `port`: the fast path when `notify` is known, else the hypercall. */
  sender(port: number, notify?: EvtchnNotify): () => void {
    const fast = notify ? new EvtchnNotifier(this.memory, notify, (b, o) => new Doorbell(b, o)) : undefined;
    return () => {
      this.counters.sends++;
      this.lastActive = performance.now();
      if (fast?.trySend()) return;
      this.counters.slowSends++;
      this.hc.call('event_channel_op', 'send', { port }).catch(() => {
        // The far end is gone (closed or its domain died): spurious or lost kicks are legal.
      });
    };
  }

  /** One port as the `EventChannel` a xenstore ring uses. */
  eventChannel(port: number, notify?: EvtchnNotify): EventChannel {
    const send = this.sender(port, notify);
    return { notify: send, bind: (h) => this.on(port, h) };
  }

  stop(): Promise<void> {
    this.running = false;
    return this.loop;
  }

  private poll(): void {
    if (this.handlers.size === 0 && !this.opts.scan) return;
    let any = false;
    for (const p of this.opts.scan ? this.shared.scan(0) : this.shared.consume(this.handlers.keys())) {
      this.counters.events++;
      any = true;
      try {
        this.handlers.get(p)?.();
      } catch {
        // A handler's failure is its own; the loop keeps serving the other ports.
      }
    }
    // The window runs from the end of the handlers' (synchronous) work, not its start: a backend
    // that served a long batch still looks for the frontend's next push for the whole window.
    if (any) this.lastActive = performance.now();
  }

  /** The polling window now, µs (adapts between 0 and the maximum). */
  get pollWindowUs(): number {
    return this.window.windowMs * 1000;
  }

  private async run(): Promise<void> {
    while (this.running) {
      const seen = this.bell.seq;
      this.poll();
      if (this.window.windowMs > 0 && performance.now() - this.lastActive < this.window.windowMs) {
        // Bounded: the window closes windowMs after the last event handled or sent.
        if (await this.lookUntil(seen)) {
          this.counters.pollHits++;
          continue;
        }
        this.counters.pollMisses++;
      }
      await this.bell.waitAsync(seen, this.pollMs);
      this.counters.wakeups++;
      // (Before any activity there is no gap to learn from.)
      if (this.bell.seq !== seen && this.lastActive > -Infinity) this.window.slept(performance.now() - this.lastActive);
    }
  }

  /**
   * Looks at the doorbell once per turn of the event loop (`lookEachTurn`: each look yields the
   * core first, so a peer runnable on this core, the one whose answer we wait for perhaps, runs
   * at once) until it moves (true), the window closes or the loop stops (false).
   */
  private lookUntil(seen: number): Promise<boolean> {
    return lookEachTurn(
      () => this.running && this.bell.seq !== seen,
      () => this.running && performance.now() - this.lastActive < this.window.windowMs,
    );
  }
}
