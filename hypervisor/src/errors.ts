/**
 * The one place where anything a hypercall handler throws becomes Xen's error code
 * (CONVENTIONS.md, "Errors"). Handlers throw XenError with Xen's errno name; anything else is a
 * hypervisor bug, reported as EIO and logged, never a crash.
 */
import { XenErrno, XenError, type XenErrnoName } from '@xenlab/xen-public';

export interface MappedError {
  errno: XenErrnoName;
  ret: number;
  message: string;
  /** True when the error was not an expected Xen error (a bug worth a console line). */
  internal: boolean;
}

export function toXenError(e: unknown): MappedError {
  if (e instanceof XenError) return { errno: e.errno, ret: e.ret, message: e.detail ?? e.errno, internal: false };
  const message = e instanceof Error ? e.message : String(e);
  return { errno: 'EIO', ret: -XenErrno.EIO, message, internal: true };
}
