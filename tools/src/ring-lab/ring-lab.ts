/**
 * The ring lab: look inside a shared ring page, and answer blkif requests as a back end once.
 * For learners (see what a front end left on the page) and for interoperability testing (a page
 * filled by C code using Xen's own ring.h macros reads and answers correctly).
 *
 * The private indices of each side (req_cons, rsp_cons, ...) are not on the page, so a dump
 * shows what can be known from it: requests not yet answered lie in [rsp_prod, req_prod), and
 * responses the front end may not have consumed lie in [rsp_event - 1, rsp_prod).
 */
import {
  BackRing,
  blkifRequest,
  blkifResponse,
  blkifSegment,
  BLKIF_ENTRY_BYTES,
  BLKIF_MAX_SEGMENTS_PER_REQUEST,
  BLKIF_RSP,
  netifRxRequest,
  netifRxResponse,
  netifTxRequest,
  netifTxResponse,
  NETIF_RX_ENTRY_BYTES,
  NETIF_TX_ENTRY_BYTES,
  ringEntries,
  xenconsInterface,
  xenstoreDomainInterface,
  XENCONS_IN_BYTES,
  XENCONS_OUT_BYTES,
  XENSTORE_RING_SIZE,
  type Layout,
  type FieldSpecs,
} from '@xenlab/ring-buffers';

export const PROTOCOLS = ['blkif', 'netif-tx', 'netif-rx', 'console', 'xenstore'] as const;
export type Proto = (typeof PROTOCOLS)[number];

interface SringProto {
  entryBytes: number;
  request: Layout<FieldSpecs>;
  response: Layout<FieldSpecs>;
  /** Extra decoding of a request (blkif segments). */
  decorate?(view: DataView, off: number, req: Record<string, unknown>): void;
}

const SRING: Record<'blkif' | 'netif-tx' | 'netif-rx', SringProto> = {
  blkif: {
    entryBytes: BLKIF_ENTRY_BYTES,
    request: blkifRequest,
    response: blkifResponse,
    decorate(view, off, req) {
      const n = Math.min(Number(req.nrSegments), BLKIF_MAX_SEGMENTS_PER_REQUEST);
      req.seg = Array.from({ length: n }, (_, i) => blkifSegment.read(view, off + blkifRequest.offsetOf('seg', i)));
    },
  },
  'netif-tx': { entryBytes: NETIF_TX_ENTRY_BYTES, request: netifTxRequest, response: netifTxResponse },
  'netif-rx': { entryBytes: NETIF_RX_ENTRY_BYTES, request: netifRxRequest, response: netifRxResponse },
};

/** JSON with bigints as decimal strings. */
export function toJson(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x), 2);
}

export function dump(proto: Proto, buffer: ArrayBuffer, offset: number): Record<string, unknown> {
  if (proto === 'console') return dumpConsole(buffer, offset);
  if (proto === 'xenstore') return dumpXenstore(buffer, offset);
  const p = SRING[proto];
  const bytes = Math.min(4096, buffer.byteLength - offset);
  const view = new DataView(buffer, offset, bytes);
  const nrEnts = ringEntries(4096, p.entryBytes);
  const header = {
    reqProd: view.getUint32(0, true),
    reqEvent: view.getUint32(4, true),
    rspProd: view.getUint32(8, true),
    rspEvent: view.getUint32(12, true),
  };
  const slot = (idx: number) => 64 + (idx & (nrEnts - 1)) * p.entryBytes;
  const out: Record<string, unknown> = { proto, offset, nrEnts, entryBytes: p.entryBytes, header };
  const pending = (header.reqProd - header.rspProd) >>> 0;
  const errors: string[] = [];
  if (pending > nrEnts) {
    errors.push(`req_prod ${header.reqProd} is ${pending} ahead of rsp_prod ${header.rspProd}: more than the ring's ${nrEnts} entries (a broken or hostile front end)`);
  } else {
    out.requests = Array.from({ length: pending }, (_, i) => {
      const idx = (header.rspProd + i) >>> 0;
      const req: Record<string, unknown> = { index: idx, slot: idx & (nrEnts - 1), ...p.request.read(view, slot(idx)) };
      p.decorate?.(view, slot(idx), req);
      return req;
    });
  }
  const from = (header.rspEvent - 1) >>> 0;
  const unread = (header.rspProd - from) >>> 0;
  if (unread > nrEnts) {
    errors.push(`rsp_prod ${header.rspProd} is ${unread} past rsp_event-1: more than the ring holds`);
  } else {
    out.responses = Array.from({ length: unread }, (_, i) => {
      const idx = (from + i) >>> 0;
      return { index: idx, slot: idx & (nrEnts - 1), ...p.response.read(view, slot(idx)) };
    });
  }
  if (errors.length) out.errors = errors;
  return out;
}

function byteRing(bytes: Uint8Array, base: number, size: number, cons: number, prod: number) {
  const n = (prod - cons) >>> 0;
  if (n > size) return { cons, prod, error: `prod ${prod} is ${n} bytes past cons ${cons}: more than the ${size}-byte ring` };
  const data = new Uint8Array(n);
  for (let i = 0; i < n; i++) data[i] = bytes[base + ((cons + i) & (size - 1))]!;
  return { cons, prod, pending: n, data };
}

function dumpConsole(buffer: ArrayBuffer, offset: number) {
  const view = new DataView(buffer, offset, xenconsInterface.size);
  const bytes = new Uint8Array(buffer, offset, xenconsInterface.size);
  const h = xenconsInterface.read(view, 0);
  const show = (r: ReturnType<typeof byteRing>) =>
    r.data ? { cons: r.cons, prod: r.prod, pending: r.pending, text: Buffer.from(r.data).toString('latin1') } : r;
  return {
    proto: 'console',
    offset,
    in: show(byteRing(bytes, 0, XENCONS_IN_BYTES, h.inCons, h.inProd)),
    out: show(byteRing(bytes, 1024, XENCONS_OUT_BYTES, h.outCons, h.outProd)),
  };
}

/** Splits a byte stream into xs_wire messages (16-byte header + payload), as far as it goes. */
function xsMessages(data: Uint8Array) {
  const msgs: unknown[] = [];
  let i = 0;
  while (data.length - i >= 16) {
    const dv = new DataView(data.buffer, data.byteOffset + i, 16);
    const len = dv.getUint32(12, true);
    const msg: Record<string, unknown> = { type: dv.getUint32(0, true), reqId: dv.getUint32(4, true), txId: dv.getUint32(8, true), len };
    if (len > 4096) {
      msg.error = 'len over XENSTORE_PAYLOAD_MAX (4096)';
      msgs.push(msg);
      return msgs;
    }
    if (data.length - i - 16 < len) {
      msg.partial = true;
      msgs.push(msg);
      return msgs;
    }
    msg.payload = Buffer.from(data.subarray(i + 16, i + 16 + len)).toString('latin1').split('\0');
    msgs.push(msg);
    i += 16 + len;
  }
  if (i < data.length) msgs.push({ partialHeader: data.length - i });
  return msgs;
}

function dumpXenstore(buffer: ArrayBuffer, offset: number) {
  const view = new DataView(buffer, offset, xenstoreDomainInterface.size);
  const bytes = new Uint8Array(buffer, offset, xenstoreDomainInterface.size);
  const h = xenstoreDomainInterface.read(view, 0);
  const side = (r: ReturnType<typeof byteRing>) => (r.data ? { cons: r.cons, prod: r.prod, pending: r.pending, messages: xsMessages(r.data) } : r);
  return {
    proto: 'xenstore',
    offset,
    serverFeatures: h.serverFeatures,
    connection: h.connection,
    error: h.error,
    req: side(byteRing(bytes, 0, XENSTORE_RING_SIZE, h.reqCons, h.reqProd)),
    rsp: side(byteRing(bytes, 1024, XENSTORE_RING_SIZE, h.rspCons, h.rspProd)),
  };
}

export interface EchoResult {
  answered: number;
  /** Would a real back end have kicked the event channel? */
  notify: boolean;
  header: { reqProd: number; reqEvent: number; rspProd: number; rspEvent: number };
  error?: string;
}

/**
 * Acts as a blkif back end once: attaches at the page's rsp_prod (BACK_RING_ATTACH), answers
 * every pending request with OKAY echoing its id and operation, publishes the responses, then
 * does the final check so req_event is left as Xen's back end leaves it (req_cons + 1).
 */
export function echoBlkif(buffer: ArrayBuffer, offset: number): EchoResult {
  const ring = BackRing.resume(buffer, offset, 4096, BLKIF_ENTRY_BYTES);
  const copy = new Uint8Array(BLKIF_ENTRY_BYTES);
  const cv = new DataView(copy.buffer);
  let answered = 0;
  let notify = false;
  do {
    const n = ring.unconsumedRequests();
    for (let i = 0; i < n; i++) {
      ring.copyRequest(copy);
      const req = blkifRequest.read(cv, 0);
      blkifResponse.write(ring.view, ring.nextResponseOffset(), { id: req.id, operation: req.operation, status: BLKIF_RSP.OKAY });
      ring.produced();
      answered++;
    }
    if (n) notify = ring.pushResponses() || notify;
  } while (ring.finalCheckForRequests());
  const res: EchoResult = { answered, notify, header: ring.header() };
  if (ring.broken) res.error = ring.broken.message;
  return res;
}
