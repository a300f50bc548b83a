/**
 * The xenstore wire protocol (Xen's `xen/include/public/io/xs_wire.h`): the 16-byte message
 * header, operation numbers, error names, limits, and a frame decoder that turns a byte stream
 * (unix socket or the xenstore ring page) into messages. Both xenstored and the client library
 * use this module; it imports nothing else from xenlab. Protocol prose: xenstore/README.md.
 */

/** `struct xsd_sockmsg`: four little-endian u32 fields (fact sheet 5.1). */
export const XSD_SOCKMSG = {
  type: { offset: 0, size: 4 },
  reqId: { offset: 4, size: 4 },
  txId: { offset: 8, size: 4 },
  len: { offset: 12, size: 4 },
} as const;
export const XS_HEADER_BYTES = 16;

/** Largest payload in either direction; a peer that sends more is disconnected. */
export const XENSTORE_PAYLOAD_MAX = 4096;
export const XENSTORE_ABS_PATH_MAX = 3072;
export const XENSTORE_REL_PATH_MAX = 2048;

/** `enum xsd_sockmsg_type` as in Xen 4.17 (fact sheet 5.2). */
export const XsType = {
  CONTROL: 0,
  DIRECTORY: 1,
  READ: 2,
  GET_PERMS: 3,
  WATCH: 4,
  UNWATCH: 5,
  TRANSACTION_START: 6,
  TRANSACTION_END: 7,
  INTRODUCE: 8,
  RELEASE: 9,
  GET_DOMAIN_PATH: 10,
  WRITE: 11,
  MKDIR: 12,
  RM: 13,
  SET_PERMS: 14,
  WATCH_EVENT: 15,
  ERROR: 16,
  IS_DOMAIN_INTRODUCED: 17,
  RESUME: 18,
  SET_TARGET: 19,
  /** XS_RESTRICT: removed from Xen; answered with ENOSYS. */
  RESTRICT: 20,
  RESET_WATCHES: 21,
  DIRECTORY_PART: 22,
  INVALID: 0xffff,
} as const;
export type XsTypeName = keyof typeof XsType;
export type XsTypeNumber = (typeof XsType)[XsTypeName];
/** XS_DEBUG is the old name of XS_CONTROL. */
export const XS_DEBUG = XsType.CONTROL;
/** Number of message types in Xen 4.17 (`XS_TYPE_COUNT`); anything at or above is ENOSYS. */
export const XS_TYPE_COUNT = 23;

const typeNames: string[] = [];
for (const [k, v] of Object.entries(XsType)) if (v < XS_TYPE_COUNT) typeNames[v] = k;
/** Name of a message type, or `UNKNOWN(<n>)`. */
export function xsTypeName(type: number): string {
  return typeNames[type] ?? `UNKNOWN(${type})`;
}

/** `xsd_errors[]`, in Xen's order, with the Linux errno each stands for (fact sheet 5.3). */
export const XsErrors = [
  ['EINVAL', 22],
  ['EACCES', 13],
  ['EEXIST', 17],
  ['EISDIR', 21],
  ['ENOENT', 2],
  ['ENOMEM', 12],
  ['ENOSPC', 28],
  ['EIO', 5],
  ['ENOTEMPTY', 39],
  ['ENOSYS', 38],
  ['EROFS', 30],
  ['EBUSY', 16],
  ['EAGAIN', 11],
  ['EISCONN', 106],
  ['E2BIG', 7],
  ['EPERM', 1],
] as const;
export type XsErrorName = (typeof XsErrors)[number][0];
export const XS_ERROR_NAMES: readonly XsErrorName[] = XsErrors.map(([n]) => n);
export function isXsErrorName(s: string): s is XsErrorName {
  return (XS_ERROR_NAMES as readonly string[]).includes(s);
}
export function xsErrno(name: XsErrorName): number {
  return XsErrors.find(([n]) => n === name)![1];
}

/** Special watch paths fired by the daemon itself. */
export const XS_INTRODUCE_DOMAIN = '@introduceDomain';
export const XS_RELEASE_DOMAIN = '@releaseDomain';

export interface XsHeader {
  type: number;
  reqId: number;
  txId: number;
  len: number;
}

export interface XsMessage extends XsHeader {
  payload: Uint8Array;
}

export function encodeHeader(h: XsHeader, out: Uint8Array = new Uint8Array(XS_HEADER_BYTES), at = 0): Uint8Array {
  putU32(out, at + XSD_SOCKMSG.type.offset, h.type);
  putU32(out, at + XSD_SOCKMSG.reqId.offset, h.reqId);
  putU32(out, at + XSD_SOCKMSG.txId.offset, h.txId);
  putU32(out, at + XSD_SOCKMSG.len.offset, h.len);
  return out;
}

/** Little-endian u32 access without allocating a DataView (this is on every message's path). */
function putU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
  b[at + 2] = (v >>> 16) & 0xff;
  b[at + 3] = (v >>> 24) & 0xff;
}

function getU32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

export function decodeHeader(buf: Uint8Array, at = 0): XsHeader {
  return {
    type: getU32(buf, at + XSD_SOCKMSG.type.offset),
    reqId: getU32(buf, at + XSD_SOCKMSG.reqId.offset),
    txId: getU32(buf, at + XSD_SOCKMSG.txId.offset),
    len: getU32(buf, at + XSD_SOCKMSG.len.offset),
  };
}

const utf8 = new TextEncoder();
const utf8d = new TextDecoder();

export function toBytes(p: Uint8Array | string): Uint8Array {
  if (typeof p !== 'string') return p;
  // Paths, tokens and replies are short ASCII: copy them without the TextEncoder's overhead.
  if (p.length <= 256) {
    const out = new Uint8Array(p.length);
    for (let i = 0; i < p.length; i++) {
      const c = p.charCodeAt(i);
      if (c > 0x7f) return utf8.encode(p);
      out[i] = c;
    }
    return out;
  }
  return utf8.encode(p);
}

/** One framed message (header + payload) ready to send. */
export function encodeMessage(type: number, reqId: number, txId: number, payload: Uint8Array | string): Uint8Array {
  const body = toBytes(payload);
  const out = new Uint8Array(XS_HEADER_BYTES + body.length);
  encodeHeader({ type, reqId, txId, len: body.length }, out, 0);
  out.set(body, XS_HEADER_BYTES);
  return out;
}

/** `a\0b\0` for the list [a, b]: how paths, tokens, permissions and child names travel. */
export function joinNul(parts: readonly string[]): string {
  let s = '';
  for (const p of parts) s += p + '\0';
  return s;
}

/**
 * Splits a payload on NULs. A trailing NUL ends the last string and does not start an empty one;
 * text after the last NUL (for example WRITE's value) is returned as the final element.
 */
export function splitNul(payload: Uint8Array): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < payload.length; i++) {
    if (payload[i] === 0) {
      out.push(bytesToString(payload.subarray(start, i)));
      start = i + 1;
    }
  }
  if (start < payload.length) out.push(bytesToString(payload.subarray(start)));
  return out;
}

export function bytesToString(b: Uint8Array): string {
  // Short ASCII (paths, tokens, numbers) is the common case: one fromCharCode, no decoder.
  if (b.length <= 128) {
    for (let i = 0; i < b.length; i++) if (b[i]! > 0x7f) return utf8d.decode(b);
    return String.fromCharCode.apply(null, b as unknown as number[]);
  }
  return utf8d.decode(b);
}

/** Why a stream of frames can no longer be decoded (the daemon drops such a connection). */
export type XsFrameError = 'payload-too-long';

/**
 * Reassembles messages from a byte stream. `push()` returns the complete messages found; a header
 * announcing more than XENSTORE_PAYLOAD_MAX bytes poisons the decoder (`error` is set) since the
 * stream cannot be resynchronised.
 */
export class XsFrameDecoder {
  private buf = new Uint8Array(0);
  private used = 0;
  error: XsFrameError | null = null;

  /**
   * `copyPayloads` false lets a payload be a view of the chunk given to `push()` when it lies
   * wholly inside it: the caller promises never to reuse a chunk's memory (socket chunks and
   * ring reads are fresh allocations) and copies whatever it keeps.
   */
  constructor(
    private readonly maxPayload = XENSTORE_PAYLOAD_MAX,
    private readonly copyPayloads = true,
  ) {}

  /** Forgets buffered bytes and any error (a ring reconnection starts the stream afresh). */
  reset(): void {
    this.used = 0;
    this.error = null;
  }

  /** Bytes buffered but not yet forming a whole message. */
  get pending(): number {
    return this.used;
  }

  push(chunk: Uint8Array): XsMessage[] {
    const out: XsMessage[] = [];
    if (this.error) return out;
    let data: Uint8Array;
    if (this.used === 0) {
      data = chunk;
    } else {
      if (this.buf.length < this.used + chunk.length) {
        const nb = new Uint8Array(Math.max(this.used + chunk.length, this.buf.length * 2));
        nb.set(this.buf.subarray(0, this.used));
        this.buf = nb;
      }
      this.buf.set(chunk, this.used);
      this.used += chunk.length;
      data = this.buf.subarray(0, this.used);
    }
    let at = 0;
    while (data.length - at >= XS_HEADER_BYTES) {
      const len = getU32(data, at + XSD_SOCKMSG.len.offset);
      if (len > this.maxPayload) {
        this.error = 'payload-too-long';
        this.used = 0;
        return out;
      }
      if (data.length - at < XS_HEADER_BYTES + len) break;
      // Copy unless allowed not to: the decoder's own buffer is reused, and so may be a caller's.
      const payload =
        this.copyPayloads || data !== chunk
          ? data.slice(at + XS_HEADER_BYTES, at + XS_HEADER_BYTES + len)
          : data.subarray(at + XS_HEADER_BYTES, at + XS_HEADER_BYTES + len);
      out.push({
        type: getU32(data, at + XSD_SOCKMSG.type.offset),
        reqId: getU32(data, at + XSD_SOCKMSG.reqId.offset),
        txId: getU32(data, at + XSD_SOCKMSG.txId.offset),
        len,
        payload,
      });
      at += XS_HEADER_BYTES + len;
    }
    const rest = data.length - at;
    if (rest === 0) {
      this.used = 0;
    } else if (data === chunk) {
      if (this.buf.length < rest) this.buf = new Uint8Array(Math.max(rest, 256));
      this.buf.set(chunk.subarray(at));
      this.used = rest;
    } else if (at > 0) {
      this.buf.copyWithin(0, at, this.used);
      this.used = rest;
    }
    return out;
  }
}
