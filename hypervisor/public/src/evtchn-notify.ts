/**
 * Sending on a bound interdomain event channel without a hypervisor round trip (the hot path of
 * ARCHITECTURE.md's "Event channels"): the hypervisor set the channel up and handed this end an
 * `EvtchnNotify`; the sender checks that its port's generation word (in its own domain's event
 * page, written only by the hypervisor) still matches, then does Xen's 2-level "set pending" on
 * the remote shared_info page and rings the remote domain's doorbell if the port became pending. When the check fails (the channel was closed, re-bound or moved to another vCPU),
 * the caller falls back to EVTCHNOP_send, which the hypervisor validates.
 *
 * The doorbell is injected (`doorbellAt`) because this library imports no other xenlab project;
 * pass `(buf, off) => new Doorbell(buf, off)` from @xenlab/ring-buffers.
 */
import type { EvtchnNotify } from './hypercall.ts';
import { MarkResult, SharedInfoPage } from './shared-info.ts';

export interface DoorbellLike {
  ring(): void;
}

export class EvtchnNotifier {
  private readonly bound: Int32Array | undefined;
  private readonly remote: SharedInfoPage;
  private readonly bell: DoorbellLike;
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
  }

  /** Still bound as when `notify` was issued? */
  get valid(): boolean {
    return this.bound !== undefined && Atomics.load(this.bound, 0) === this.notify.generation;
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
    if (this.remote.markPending(this.notify.remote_vcpu, this.notify.remote_port) !== MarkResult.already) {
      this.stats.rings++;
      this.bell.ring();
    }
    return true;
  }
}
