/**
 * One `disk = [...]` entry (xl-disk-configuration(5)): comma-separated positional parameters
 * `target, format, vdev, access`, `key=value` pairs and bare flags, in any mix. Also the deprecated
 * xm forms: a `phy:`/`file:`/`tap:aio:`/`raw:` prefix on the target (after which the format
 * position is skipped, so `'file:/img,xvda,w'` is target, vdev, access), a `:cdrom` suffix on the
 * vdev. `target=` given by name must come last and takes the rest of the string, commas included.
 */
import { isAbsolute, resolve } from 'node:path';
import { parseVdev, type Vdev } from './vdev.ts';

export type DiskFormat = 'raw' | 'qcow' | 'qcow2' | 'vhd' | 'qed';
export type DiskAccess = 'ro' | 'rw';
export type DiskDevtype = 'disk' | 'cdrom';
export type DiskBackendType = 'phy' | 'qdisk' | 'tap';

export interface DiskSpec {
  /** Absolute path of the image (relative paths resolve against the config file's directory); undefined = empty cdrom. */
  readonly target: string | undefined;
  readonly format: DiskFormat;
  readonly vdev: Vdev;
  readonly access: DiskAccess;
  readonly devtype: DiskDevtype;
  readonly backend: string;
  readonly backendtype: DiskBackendType | undefined;
  readonly script: string | undefined;
  readonly discard: boolean | undefined;
  readonly directIoSafe: boolean;
  readonly trusted: boolean;
  /** The specification as written. */
  readonly spec: string;
}

const FORMATS: readonly DiskFormat[] = ['raw', 'qcow', 'qcow2', 'vhd', 'qed'];
const ACCESS: Record<string, DiskAccess> = { r: 'ro', ro: 'ro', w: 'rw', rw: 'rw' };
const KEYS = ['target', 'format', 'vdev', 'access', 'devtype', 'backend', 'backendtype', 'script'] as const;
type Key = (typeof KEYS)[number];
const FLAGS = ['cdrom', 'discard', 'no-discard', 'direct-io-safe', 'trusted', 'untrusted'] as const;
/** Deprecated target prefixes: what they imply. `file:`/`phy:` name a backend, the others a format. */
const PREFIXES: ReadonlyArray<[string, { format?: DiskFormat; backendtype?: DiskBackendType }]> = [
  ['tap2:tapdisk:', { backendtype: 'tap' }],
  ['tap:tapdisk:', { backendtype: 'tap' }],
  ['tap2:aio:', { backendtype: 'tap', format: 'raw' }],
  ['tap:aio:', { backendtype: 'tap', format: 'raw' }],
  ['tap:qcow2:', { backendtype: 'tap', format: 'qcow2' }],
  ['tap:qcow:', { backendtype: 'tap', format: 'qcow' }],
  ['tap:vhd:', { backendtype: 'tap', format: 'vhd' }],
  ['aio:', { format: 'raw' }],
  ['raw:', { format: 'raw' }],
  ['qcow2:', { format: 'qcow2' }],
  ['qcow:', { format: 'qcow' }],
  ['vhd:', { format: 'vhd' }],
  ['phy:', { backendtype: 'phy', format: 'raw' }],
  ['file:', { format: 'raw' }],
];

/**
 * Parses one disk specification. `configDir` resolves relative image paths. Returns the spec or
 * an error message naming the offending parameter and what was expected.
 */
export function parseDiskSpec(spec: string, configDir: string): DiskSpec | string {
  const set: Partial<Record<Key, string>> = {};
  const flags = new Set<string>();
  let deprecatedPrefix = false;
  let prefixFormat: DiskFormat | undefined;
  let prefixBackend: DiskBackendType | undefined;
  let vdevCdrom = false;

  const assign = (key: Key, value: string, how: string): string | null => {
    if (set[key] !== undefined) return `${key} given twice (second time ${how} '${value}')`;
    set[key] = value;
    return null;
  };

  let rest = spec;
  while (rest.length > 0) {
    const leading = /^\s*/.exec(rest)![0].length;
    rest = rest.slice(leading);
    if (rest.startsWith('target=')) {
      const e = assign('target', rest.slice('target='.length), 'as target=');
      if (e) return e;
      break;
    }
    const comma = rest.indexOf(',');
    const param = (comma < 0 ? rest : rest.slice(0, comma)).replace(/\s+$/, '');
    rest = comma < 0 ? '' : rest.slice(comma + 1);
    const eq = param.indexOf('=');
    if (eq >= 0) {
      const key = param.slice(0, eq).trim();
      if (!(KEYS as readonly string[]).includes(key)) {
        return `unknown parameter '${key}' (expected one of ${KEYS.join(', ')} or a flag: ${FLAGS.join(', ')})`;
      }
      const e = assign(key as Key, param.slice(eq + 1).trim(), `as ${key}=`);
      if (e) return e;
      continue;
    }
    if ((FLAGS as readonly string[]).includes(param)) {
      flags.add(param);
      continue;
    }
    // Positional: the next unset of target, format (skipped after a deprecated prefix), vdev, access.
    let value = param;
    if (set.target === undefined) {
      for (const [p, implies] of PREFIXES) {
        if (value.startsWith(p)) {
          value = value.slice(p.length);
          deprecatedPrefix = true;
          prefixFormat = implies.format;
          prefixBackend = implies.backendtype;
          break;
        }
      }
      set.target = value;
      continue;
    }
    if (!deprecatedPrefix && set.format === undefined) {
      set.format = value;
      continue;
    }
    if (set.vdev === undefined) {
      const m = /^(.*):(cdrom|disk)$/.exec(value);
      if (m) {
        value = m[1]!;
        vdevCdrom = m[2] === 'cdrom';
      }
      set.vdev = value;
      continue;
    }
    if (set.access === undefined) {
      set.access = value;
      continue;
    }
    return `too many positional parameters: '${value}' after target, format, vdev and access`;
  }

  const formatText = set.format || prefixFormat || 'raw';
  if (!(FORMATS as readonly string[]).includes(formatText)) {
    const hint = parseVdev(formatText);
    return `unknown format '${formatText}' (expected ${FORMATS.join(', ')})` +
      (typeof hint !== 'string' ? `; '${formatText}' looks like a vdev: the positions are target, format, vdev, access, so write '${set.target ?? ''},,${formatText},...' or use vdev=` : '');
  }
  if (!set.vdev) return `no vdev (the guest's device name, e.g. xvda) in '${spec}'`;
  const vdev = parseVdev(set.vdev);
  if (typeof vdev === 'string') return `bad vdev: ${vdev}`;

  const devtypeText = set.devtype || (flags.has('cdrom') || vdevCdrom ? 'cdrom' : 'disk');
  if (devtypeText !== 'disk' && devtypeText !== 'cdrom') return `unknown devtype '${devtypeText}' (expected disk or cdrom)`;
  const devtype = devtypeText as DiskDevtype;

  let access: DiskAccess = devtype === 'cdrom' ? 'ro' : 'rw';
  if (set.access) {
    const a = ACCESS[set.access];
    if (!a) return `unknown access mode '${set.access}' (expected r, ro, w or rw)`;
    access = a;
  }
  if (devtype === 'cdrom' && access === 'rw' && set.access) return `a cdrom cannot be writable (access '${set.access}')`;

  let backendtype: DiskBackendType | undefined = prefixBackend;
  if (set.backendtype) {
    if (!['phy', 'qdisk', 'tap'].includes(set.backendtype)) return `unknown backendtype '${set.backendtype}' (expected phy, qdisk or tap)`;
    backendtype = set.backendtype as DiskBackendType;
  }
  if (flags.has('discard') && flags.has('no-discard')) return `both discard and no-discard given`;
  if (flags.has('trusted') && flags.has('untrusted')) return `both trusted and untrusted given`;

  let target: string | undefined = set.target || undefined;
  if (target === undefined && devtype !== 'cdrom') return `no target (the image file) in '${spec}'; only a cdrom may be empty`;
  if (target !== undefined && !isAbsolute(target)) {
    target = backendtype === 'phy' ? `/dev/${target}` : resolve(configDir, target);
  }

  return {
    target,
    format: formatText as DiskFormat,
    vdev,
    access,
    devtype,
    backend: set.backend || '0',
    backendtype,
    script: set.script || undefined,
    discard: flags.has('discard') ? true : flags.has('no-discard') ? false : undefined,
    directIoSafe: flags.has('direct-io-safe'),
    trusted: !flags.has('untrusted'),
    spec,
  };
}
