/**
 * @xenlab/ring-buffers: shared memory between xenlab's processes, the doorbell that stands in
 * for an event-channel kick, Xen's io/ring.h, and the layouts of the I/O structures that travel
 * on rings (blkif, netif, console, xenstore). See ../README.md.
 */
export { SharedMemory, PAGE_SIZE, type OpenOptions } from './shared-memory.ts';
export { futexWait, futexWaitAsync, futexWake, schedYield, type FutexWaitResult } from './futex.ts';
export { AwakeWindow, envMicros, lookEachTurn } from './awake.ts';
export { preadvInto, pwritevFrom, VECTOR_IO_MAX } from './vector-io.ts';
export { Doorbell, type DoorbellCounters } from './doorbell.ts';
export { ByteRing, BAD_INDEX } from './byte-ring.ts';
export {
  defineLayout,
  describeLayout,
  type Layout,
  type FieldSpec,
  type FieldSpecs,
  type FieldType,
  type Struct,
  type Writer,
} from './layout.ts';
export {
  FrontRing,
  BackRing,
  ringEntries,
  needsNotify,
  sringHeader,
  SRING_HEADER_BYTES,
  type RingPeerError,
} from './ring.ts';
export * from './io/blkif.ts';
export * from './io/netif.ts';
export * from './io/console.ts';
export * from './io/xenstore.ts';
