/**
 * Node names: validation and resolution of the paths a connection sends, following Xen's rules
 * (fact sheet 5.1; `is_valid_nodename` and `canonicalize` in the C xenstored). Relative paths are
 * resolved against the caller's `/local/domain/<domid>`; `@`-paths name the special watch nodes.
 */
import { XENSTORE_ABS_PATH_MAX, XENSTORE_REL_PATH_MAX } from '@xenlab/xen-public';
import { XsError } from './errors.ts';

const VALID_CHARS = /^[A-Za-z0-9\-/_@]+$/;

export function domainPath(domid: number): string {
  return `/local/domain/${domid}`;
}

/** Is `p` a syntactically valid absolute node name? */
export function isValidAbsolute(p: string): boolean {
  if (p === '/') return true;
  if (p.length < 2 || p.length > XENSTORE_ABS_PATH_MAX || p[0] !== '/' || p.endsWith('/')) return false;
  if (!VALID_CHARS.test(p)) return false;
  return !p.includes('//');
}

export function isSpecialPath(p: string): boolean {
  return p === '@introduceDomain' || p === '@releaseDomain';
}

/**
 * Resolves `p` as sent by a connection of domain `domid` to an absolute path, or throws EINVAL.
 * `allowSpecial` admits `@introduceDomain` / `@releaseDomain` (WATCH, UNWATCH, GET/SET_PERMS).
 * `maxLength` is the caller's path quota (unprivileged domains), applied to the absolute name.
 */
export function resolvePath(p: string, domid: number, allowSpecial: boolean, maxLength = XENSTORE_ABS_PATH_MAX): string {
  if (p.length === 0) throw new XsError('EINVAL', 'empty path');
  if (p[0] === '@') {
    if (allowSpecial && isSpecialPath(p)) return p;
    throw new XsError('EINVAL', `bad special path ${JSON.stringify(p)}`);
  }
  let abs: string;
  if (p[0] === '/') {
    abs = p;
  } else {
    if (p.length > XENSTORE_REL_PATH_MAX) throw new XsError('EINVAL', 'relative path too long');
    abs = `${domainPath(domid)}/${p}`;
  }
  if (!isValidAbsolute(abs)) throw new XsError('EINVAL', `invalid path ${JSON.stringify(p.slice(0, 64))}`);
  if (abs.length > maxLength) throw new XsError('EINVAL', 'path longer than the quota');
  return abs;
}

/** The path as a relative watch sees it, if it lies under `/local/domain/<domid>/`. */
export function relativeTo(abs: string, domid: number): string {
  const home = `${domainPath(domid)}/`;
  return abs.startsWith(home) ? abs.slice(home.length) : abs;
}

export function parentOf(abs: string): string {
  const i = abs.lastIndexOf('/');
  return i <= 0 ? '/' : abs.slice(0, i);
}

export function segments(abs: string): string[] {
  return abs === '/' ? [] : abs.slice(1).split('/');
}

/** True when `p` is `ancestor` or lies below it. */
export function isUnder(p: string, ancestor: string): boolean {
  if (ancestor === '/') return p[0] === '/';
  return p === ancestor || (p.startsWith(ancestor) && p.charCodeAt(ancestor.length) === 47 /* '/' */);
}
