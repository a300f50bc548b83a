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
import { Doorbell } from '@xenlab/ring-buffers';
import { EvtchnNotifier, SharedInfoPage, type EvtchnNotify, type HypercallClient } from '@xenlab/xen-public';
import type { EventChannel } from './event-channel.ts';

export class DomainEvents {
  /**
   * Busy-poll window after activity, µs (XENLAB_EVTCHN_POLL_US overrides; 0: off). About two
   * sleep/wake-up costs: long enough for a peer on the other core to answer a kick, short enough
   * that an idle process spends next to nothing (bench pv-blk measures the difference).
   */
  static defaultBusyPollUs = envUs('XENLAB_EVTCHN_POLL_US', 100);

  private readonly handlers = new Map<number, () => void>();
  private readonly bell: Doorbell;
  private readonly shared: SharedInfoPage;
  private running = true;
  private readonly loop: Promise<void>;
  readonly counters = { wakeups: 0, events: 0, sends: 0, slowSends: 0, pollHits: 0, pollMisses: 0 };
  /** When this process last handled or sent an event (performance.now()). */
  private lastActive = -Infinity;
  private readonly busyPollMs: number;

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
       * After handling or sending an event, keep looking at the doorbell for this long (one look
       * per turn of the event loop, so I/O, timers and promises run in between) before sleeping
       * on the futex: an answer that comes back within the window costs no wake-up (~45 µs for a
       * sleeping process here, ~90 µs through a libuv pool thread), only the CPU of the looks.
       * Default DomainEvents.defaultBusyPollUs; 0 sleeps at once.
       */
      busyPollUs?: number;
    } = {},
  ) {
    this.busyPollMs = Math.max(0, opts.busyPollUs ?? DomainEvents.defaultBusyPollUs) / 1000;
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
    for (const p of this.opts.scan ? this.shared.scan(0) : this.shared.consume(this.handlers.keys())) {
      this.counters.events++;
      this.lastActive = performance.now();
      try {
        this.handlers.get(p)?.();
      } catch {
        // A handler's failure is its own; the loop keeps serving the other ports.
      }
    }
  }

  private async run(): Promise<void> {
    while (this.running) {
      const seen = this.bell.seq;
      this.poll();
      if (this.busyPollMs > 0 && performance.now() - this.lastActive < this.busyPollMs) {
        // Bounded: the window closes busyPollMs after the last event handled or sent.
        while (this.running && this.bell.seq === seen && performance.now() - this.lastActive < this.busyPollMs) {
          await new Promise<void>((r) => setImmediate(r));
        }
        if (this.bell.seq !== seen) {
          this.counters.pollHits++;
          continue;
        }
        this.counters.pollMisses++;
      }
      await this.bell.waitAsync(seen, this.pollMs);
      this.counters.wakeups++;
    }
  }
}

function envUs(name: string, fallback: number): number {
  const v = Number(process.env[name] ?? fallback);
  return Number.isFinite(v) && v >= 0 ? Math.min(v, 10_000) : fallback;
}
