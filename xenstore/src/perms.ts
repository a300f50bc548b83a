/**
 * Node permissions as Xen defines them (fact sheet 5.4): a list whose first entry names the
 * owner and gives the access of every domain not listed after it; later entries grant r, w, b
 * (both) or n (none) to one domain. The owner, dom0 and privileged connections get full access,
 * and so does a domain whose SET_TARGET target owns the node.
 */
import { XsError } from './errors.ts';

export interface Perm {
  readonly id: number;
  readonly r: boolean;
  readonly w: boolean;
}
export type Perms = readonly Perm[];

/** Who is asking: a connection's domain, its privilege, and its SET_TARGET target if any. */
export interface Caller {
  readonly domid: number;
  readonly privileged: boolean;
  readonly target: number | undefined;
}

export const ACCESS_NONE = 0;
export const ACCESS_READ = 1;
export const ACCESS_WRITE = 2;
/** Owner-level access: may change permissions. */
export const ACCESS_OWNER = 4;
export const ACCESS_ALL = ACCESS_READ | ACCESS_WRITE | ACCESS_OWNER;

function bits(p: Perm): number {
  return (p.r ? ACCESS_READ : 0) | (p.w ? ACCESS_WRITE : 0);
}

export function accessFor(c: Caller, perms: Perms): number {
  if (c.privileged) return ACCESS_ALL;
  const owner = perms[0]!;
  if (owner.id === c.domid || (c.target !== undefined && owner.id === c.target)) return ACCESS_ALL;
  for (let i = 1; i < perms.length; i++) {
    const p = perms[i]!;
    if (p.id === c.domid || (c.target !== undefined && p.id === c.target)) return bits(p);
  }
  return bits(owner);
}

const LETTERS = { n: [false, false], r: [true, false], w: [false, true], b: [true, true] } as const;

/** Parses one permission string such as `r5`; throws EINVAL. */
export function parsePerm(s: string): Perm {
  const rw = LETTERS[s[0] as keyof typeof LETTERS];
  const digits = s.slice(1);
  if (!rw || !/^[0-9]{1,5}$/.test(digits)) throw new XsError('EINVAL', `bad permission ${JSON.stringify(s.slice(0, 16))}`);
  const id = Number(digits);
  if (id > 0xffff) throw new XsError('EINVAL', `bad domid in permission ${s}`);
  return { id, r: rw[0], w: rw[1] };
}

export function formatPerm(p: Perm): string {
  return (p.r ? (p.w ? 'b' : 'r') : p.w ? 'w' : 'n') + String(p.id);
}

export function formatPerms(perms: Perms): string[] {
  return perms.map(formatPerm);
}
