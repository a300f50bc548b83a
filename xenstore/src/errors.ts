/**
 * xenstored's error handling: handlers throw `XsError` with one of Xen's error names
 * (`xsd_errors[]` in io/xs_wire.h), and `toXenError` is the one place that maps anything thrown
 * to the name sent in an XS_ERROR reply. A guest's mistake becomes an error reply, never a crash.
 */
import { isXsErrorName, type XsErrorName } from '@xenlab/xen-public';

export class XsError extends Error {
  constructor(
    readonly xenName: XsErrorName,
    detail?: string,
  ) {
    // A guest's mistake is routine data, not a bug: skip the (costly) stack capture.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(detail ? `${xenName}: ${detail}` : xenName);
    Error.stackTraceLimit = limit;
    this.name = 'XsError';
  }
}

/** Throws `name` unless `cond` holds. */
export function check(cond: unknown, name: XsErrorName, detail?: string): asserts cond {
  if (!cond) throw new XsError(name, detail);
}

/**
 * Maps an internal error to the Xen error name for the wire. An `XsError` carries its own name;
 * a Node system error with a Xen-known code keeps it; anything else is a daemon bug, reported as
 * EIO and logged by the caller (`unexpected` is true).
 */
export function toXenError(e: unknown): { name: XsErrorName; unexpected: boolean } {
  if (e instanceof XsError) return { name: e.xenName, unexpected: false };
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && isXsErrorName(code)) return { name: code, unexpected: false };
  if (e instanceof RangeError && /Invalid array length|allocation/i.test(e.message)) return { name: 'ENOMEM', unexpected: true };
  return { name: 'EIO', unexpected: true };
}
