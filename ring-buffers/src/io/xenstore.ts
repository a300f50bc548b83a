/**
 * io/xs_wire.h: `xenstore_domain_interface`, the guest's xenstore ring page — two 1024-byte
 * byte-stream rings carrying xs_wire messages, plus the reconnection and error fields.
 */
import { defineLayout } from '../layout.ts';

export const XENSTORE_RING_SIZE = 1024;
export const XENSTORE_SERVER_FEATURE = { RECONNECTION: 1, ERROR: 2 } as const;
export const XENSTORE_CONNECTION = { CONNECTED: 0, RECONNECT: 1 } as const;
export const XENSTORE_ERROR = { NONE: 0, COMM: 1, RINGIDX: 2, PROTO: 3 } as const;

export const xenstoreDomainInterface = defineLayout('xenstore_domain_interface', 2076, {
  req: { offset: 0, count: XENSTORE_RING_SIZE, elem: 'u8', writer: 'guest', doc: 'guest to server bytes' },
  rsp: { offset: 1024, count: XENSTORE_RING_SIZE, elem: 'u8', writer: 'server', doc: 'replies and watch events' },
  reqCons: { offset: 2048, type: 'u32', writer: 'server' },
  reqProd: { offset: 2052, type: 'u32', writer: 'guest' },
  rspCons: { offset: 2056, type: 'u32', writer: 'guest' },
  rspProd: { offset: 2060, type: 'u32', writer: 'server' },
  serverFeatures: { offset: 2064, type: 'u32', writer: 'server', doc: 'XENSTORE_SERVER_FEATURE_*' },
  connection: { offset: 2068, type: 'u32', writer: 'either', doc: 'XENSTORE_CONNECTED / RECONNECT' },
  error: { offset: 2072, type: 'u32', writer: 'server', doc: 'XENSTORE_ERROR_*' },
});
