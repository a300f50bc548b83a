/**
 * Argument checks for hypercalls arriving from other processes: everything on the wire is
 * untrusted (a guest's mistake must become an errno, never an exception escaping a handler).
 */
import { XenError } from '@xenlab/xen-public';

export function obj(x: unknown, what = 'argument'): Record<string, unknown> {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) throw new XenError('EFAULT', `${what} must be a struct`);
  return x as Record<string, unknown>;
}

export function int(x: unknown, what: string, min = 0, max = 2 ** 53 - 1): number {
  if (typeof x !== 'number' || !Number.isInteger(x) || x < min || x > max) {
    throw new XenError('EINVAL', `${what} must be an integer in ${min}..${max}`);
  }
  return x;
}

/** An optional integer: `dflt` when absent, else checked against min..max. */
export function optInt(x: unknown, what: string, dflt: number, min = 0, max = 2 ** 53 - 1): number {
  return x === undefined || x === null ? dflt : int(x, what, min, max);
}

export const u16 = (x: unknown, what: string): number => int(x, what, 0, 0xffff);
export const u32 = (x: unknown, what: string): number => int(x, what, 0, 0xffffffff);

export function arr(x: unknown, what: string, max = 1 << 16): unknown[] {
  if (!Array.isArray(x)) throw new XenError('EFAULT', `${what} must be an array`);
  if (x.length > max) throw new XenError('EINVAL', `${what} has more than ${max} elements`);
  return x;
}

export function intArr(x: unknown, what: string, max = 1 << 16): number[] {
  return arr(x, what, max).map((v, i) => int(v, `${what}[${i}]`));
}

export function str(x: unknown, what: string, max = 1 << 16): string {
  if (typeof x !== 'string' || x.length > max) throw new XenError('EINVAL', `${what} must be a string of at most ${max} characters`);
  return x;
}
