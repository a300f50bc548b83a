/**
 * A guest's xenstore ring as a file both processes map, until the hypervisor hands xenstored
 * the real page (grant reference 1) and event channel. Page 0 is the
 * `xenstore_domain_interface`; page 1 holds the two doorbells standing in for the event
 * channel's two directions (guest -> xenstored, xenstored -> guest).
 */
import { Doorbell, PAGE_SIZE, SharedMemory } from '@xenlab/ring-buffers';
import { doorbellEventChannel, type EventChannel } from './event-channel.ts';
import { XenstoreRing } from './ring.ts';

export const RING_FILE_BYTES = 2 * PAGE_SIZE;
const TO_SERVER = PAGE_SIZE;
const TO_GUEST = PAGE_SIZE + Doorbell.BYTES;

export class GuestRingFile {
  readonly ring: XenstoreRing;
  private readonly toServer: Doorbell;
  private readonly toGuest: Doorbell;

  private constructor(readonly shm: SharedMemory) {
    this.ring = new XenstoreRing(shm.buffer, 0);
    this.toServer = new Doorbell(shm.buffer, TO_SERVER);
    this.toGuest = new Doorbell(shm.buffer, TO_GUEST);
  }

  /** Creates a zeroed ring file (the domain builder's job). */
  static create(path: string): GuestRingFile {
    const shm = SharedMemory.create(path, RING_FILE_BYTES);
    Doorbell.init(shm.buffer, TO_SERVER);
    Doorbell.init(shm.buffer, TO_GUEST);
    return new GuestRingFile(shm);
  }

  static open(path: string): GuestRingFile {
    return new GuestRingFile(SharedMemory.open(path, { writable: true }));
  }

  /** The guest's end: waits on xenstored's kicks, kicks xenstored (see doorbellEventChannel). */
  guestEventChannel(pollMs?: number, spinUs?: number): EventChannel {
    return doorbellEventChannel(this.toGuest, this.toServer, pollMs, spinUs);
  }

  /** xenstored's end. */
  serverEventChannel(pollMs?: number, spinUs?: number): EventChannel {
    return doorbellEventChannel(this.toServer, this.toGuest, pollMs, spinUs);
  }

  /** The raw doorbells (benchmarks drive them synchronously). */
  get doorbells(): { toServer: Doorbell; toGuest: Doorbell } {
    return { toServer: this.toServer, toGuest: this.toGuest };
  }

  close(): void {
    this.shm.close();
  }
}
