/**
 * @xenlab/xenstore-client: talk to xenstored from dom0, the PV shim, qemu-dm and the tools,
 * over the unix socket or a guest's xenstore ring page. See ../../README.md.
 */
export {
  XenstoreClient,
  XenstoreError,
  Transaction,
  WatchStream,
  parsePermission,
  formatPermission,
  type Permission,
  type WatchEvent,
  type XenstoreOps,
  type TransactionOptions,
} from './client.ts';
export { connectSocket, defaultSocketPath, RingTransport, type XsTransport } from './transport.ts';
export { XenstoreRing, RING_BAD_INDEX } from './ring.ts';
export { localEventChannelPair, doorbellEventChannel, type EventChannel } from './event-channel.ts';
export { GuestRingFile, RING_FILE_BYTES } from './ring-file.ts';
export { DomainEvents } from './domain-events.ts';
