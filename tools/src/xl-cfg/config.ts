/**
 * The typed domain configuration `xl create` builds from an xl.cfg file (xl.cfg(5)) plus
 * `key=value` overrides from the command line: name, type, memory, vCPUs, kernel, disks, vifs,
 * the on_* actions, boot order, serial, uuid. Keys this module does not interpret are kept, with
 * their source, in `settings`, so later code (and `xl` warnings) can see them.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseDiskSpec, type DiskSpec } from './disk.ts';
import { parseSettings, XlCfgError, type XlAtom, type XlSetting, type XlValue } from './lexer.ts';

export type GuestType = 'pv' | 'hvm' | 'pvh';
export const ACTIONS = ['destroy', 'restart', 'preserve', 'rename-restart', 'coredump-destroy', 'coredump-restart', 'soft-reset'] as const;
export type DomainAction = (typeof ACTIONS)[number];

export interface VifSpec {
  readonly mac: string | undefined;
  readonly bridge: string | undefined;
  readonly ip: string | undefined;
  readonly model: string | undefined;
  readonly type: string | undefined;
  readonly vifname: string | undefined;
  readonly script: string | undefined;
  readonly backend: string;
  readonly rate: string | undefined;
  /** Every key as written, including ones not listed above. */
  readonly keys: Readonly<Record<string, string>>;
  readonly spec: string;
}

export interface XlConfig {
  /** Absolute path of the config file (or '<string>' when parsed from text without one). */
  readonly file: string;
  readonly name: string;
  readonly type: GuestType;
  /** MiB. */
  readonly memory: number;
  /** MiB; defaults to `memory`. */
  readonly maxmem: number;
  readonly vcpus: number;
  readonly maxvcpus: number;
  /** Absolute path (relative paths resolve against the config file's directory). */
  readonly kernel: string | undefined;
  readonly ramdisk: string | undefined;
  readonly cmdline: string | undefined;
  readonly disks: readonly DiskSpec[];
  readonly vifs: readonly VifSpec[];
  readonly onPoweroff: DomainAction;
  readonly onReboot: DomainAction;
  readonly onCrash: DomainAction;
  readonly onSoftReset: DomainAction;
  /** HVM boot order: letters from a (floppy), c (disk), d (cdrom), n (network). */
  readonly boot: string | undefined;
  readonly serial: readonly string[];
  readonly uuid: string | undefined;
  /** Every setting after overrides, by key (the last one of each key wins). */
  readonly settings: ReadonlyMap<string, XlSetting>;
  /** Keys present in the file that this module does not interpret. */
  readonly unknownKeys: readonly string[];
}

const KNOWN = new Set([
  'name', 'type', 'builder', 'memory', 'maxmem', 'vcpus', 'maxvcpus', 'kernel', 'ramdisk', 'cmdline', 'extra', 'root',
  'disk', 'vif', 'on_poweroff', 'on_reboot', 'on_crash', 'on_soft_reset', 'boot', 'serial', 'uuid',
]);

/** Reads and parses a config file; throws XlCfgError (including for a missing file). */
export function loadXlConfig(path: string, overrides: readonly string[] = []): XlConfig {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new XlCfgError({ file, line: 0 }, undefined,
      code === 'ENOENT' ? 'config file not found' : `cannot read the config file (${code ?? String(e)})`);
  }
  return parseXlConfig(text, file, overrides);
}

/** Parses `key=value` command-line overrides; a bare word after `=` is taken as a string. */
export function parseOverride(arg: string): XlSetting & { append: boolean } {
  const where = { override: arg };
  const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(\+?=)\s*([\s\S]*)$/.exec(arg);
  if (!m) throw new XlCfgError(where, undefined, "expected key=value (for example memory=256 or name='guest2')");
  const [, key, op, rawValue] = m;
  let value: XlValue;
  if (/^(?:[\s\S]*['"\[]|0[xX][0-9a-fA-F]+\s*$|[0-9]+\s*$)/.test(rawValue!)) {
    try {
      const parsed = parseSettings(`${key} ${op} ${rawValue}`, '<override>');
      value = parsed[parsed.length - 1]!.value;
    } catch (e) {
      if (e instanceof XlCfgError) throw new XlCfgError(where, key, e.detail);
      throw e;
    }
  } else {
    value = { kind: 'string', text: rawValue!.trim(), line: 0 };
  }
  const append = op === '+=';
  return { key: key!, value: append ? { kind: 'list', items: value.kind === 'list' ? value.items : [value], line: 0 } : value, source: where, append };
}

export function parseXlConfig(text: string, file = '<string>', overrides: readonly string[] = []): XlConfig {
  const dir = file.startsWith('<') ? process.cwd() : dirname(file);
  const settings = new Map<string, XlSetting>();
  for (const s of parseSettings(text, file)) settings.set(s.key, s);
  for (const o of overrides) {
    const { append, ...s } = parseOverride(o);
    const prev = settings.get(s.key);
    if (append && prev && prev.value.kind !== 'list') throw new XlCfgError(s.source, s.key, `'+=' needs a list, but ${s.key} is a single value`);
    if (append && prev?.value.kind === 'list' && s.value.kind === 'list') {
      settings.set(s.key, { ...s, value: { ...s.value, items: [...prev.value.items, ...s.value.items] } });
    } else settings.set(s.key, s);
  }

  const fail = (s: XlSetting, detail: string): never => {
    throw new XlCfgError(s.source, keyLabel(s), detail);
  };
  const get = (k: string) => settings.get(k);
  const str = (k: string): string | undefined => {
    const s = get(k);
    if (!s) return undefined;
    if (s.value.kind !== 'string') fail(s, `expected a quoted string, found ${describe(s.value)}`);
    return (s.value as XlAtom).text;
  };
  const int = (k: string, min: number, max: number, unit = ''): number | undefined => {
    const s = get(k);
    if (!s) return undefined;
    const v = s.value;
    // xl accepts numbers written as strings too ("512").
    const t = v.kind === 'list' ? undefined : v.text;
    const n = t !== undefined && /^(?:0[xX][0-9a-fA-F]+|[0-9]+)$/.test(t) ? Number(t) : NaN;
    if (!Number.isSafeInteger(n)) fail(s, `expected a whole number${unit ? ` of ${unit}` : ''}, found ${describe(v)}`);
    if (n < min || n > max) fail(s, `${n} is out of range (expected ${min}..${max}${unit ? ` ${unit}` : ''})`);
    return n;
  };
  const list = (k: string): { s: XlSetting; items: readonly XlAtom[] } | undefined => {
    const s = get(k);
    if (!s) return undefined;
    if (s.value.kind === 'list') return { s, items: s.value.items };
    if (s.value.kind === 'string') return { s, items: [s.value] };
    return fail(s, `expected a [ list ] of quoted strings, found ${describe(s.value)}`);
  };
  const path = (k: string): string | undefined => {
    const p = str(k);
    if (p === undefined || p === '') return undefined;
    return isAbsolute(p) ? p : resolve(dir, p);
  };
  const action = (k: string, dflt: DomainAction): DomainAction => {
    const v = str(k);
    if (v === undefined) return dflt;
    if (!(ACTIONS as readonly string[]).includes(v)) fail(get(k)!, `unknown action '${v}' (expected ${ACTIONS.join(', ')})`);
    if (v === 'soft-reset' && k !== 'on_soft_reset') fail(get(k)!, `'soft-reset' is only valid for on_soft_reset`);
    return v as DomainAction;
  };

  const nameSetting = get('name');
  const name = str('name');
  if (name === undefined) {
    throw new XlCfgError({ file, line: 0 }, 'name', "missing: every domain needs a name (add name = \"...\")");
  }
  if (!/^[A-Za-z0-9_.:+-][A-Za-z0-9_.:+@-]*$/.test(name) || /^[0-9]+$/.test(name)) {
    fail(nameSetting!, `'${name}' is not a usable domain name (letters, digits and _ . : + - @; not all digits)`);
  }

  let type: GuestType = 'pv';
  const typeText = str('type');
  if (typeText !== undefined) {
    if (typeText !== 'pv' && typeText !== 'hvm' && typeText !== 'pvh') fail(get('type')!, `unknown type '${typeText}' (expected pv, pvh or hvm)`);
    type = typeText as GuestType;
  } else {
    const builder = str('builder');
    if (builder !== undefined) {
      if (builder !== 'generic' && builder !== 'hvm') fail(get('builder')!, `unknown builder '${builder}' (expected generic or hvm; prefer type = "pv" or "hvm")`);
      type = builder === 'hvm' ? 'hvm' : 'pv';
    }
  }

  const memory = int('memory', 1, 1 << 24, 'MiB') ?? 128;
  const maxmem = int('maxmem', 1, 1 << 24, 'MiB') ?? memory;
  if (maxmem < memory) fail(get('maxmem')!, `maxmem ${maxmem} is below memory ${memory}`);
  const vcpus = int('vcpus', 1, 128) ?? 1;
  const maxvcpus = int('maxvcpus', 1, 128) ?? vcpus;
  if (maxvcpus < vcpus) fail(get('maxvcpus')!, `maxvcpus ${maxvcpus} is below vcpus ${vcpus}`);

  const disks: DiskSpec[] = [];
  const diskList = list('disk');
  if (diskList) {
    const seen = new Map<number, string>();
    for (const item of diskList.items) {
      const where = { file, line: item.line };
      if (item.kind !== 'string') throw new XlCfgError(diskList.s.source, 'disk = [...]', `expected quoted disk specifications, found the number ${item.text}`);
      const d = parseDiskSpec(item.text, dir);
      if (typeof d === 'string') throw new XlCfgError('override' in diskList.s.source ? diskList.s.source : where, 'disk = [...]', d);
      const other = seen.get(d.vdev.number);
      if (other !== undefined) throw new XlCfgError('override' in diskList.s.source ? diskList.s.source : where, 'disk = [...]', `vdev ${d.vdev.name} is used twice ('${other}' and '${d.spec}')`);
      seen.set(d.vdev.number, d.spec);
      disks.push(d);
    }
  }

  const vifs: VifSpec[] = [];
  const vifList = list('vif');
  if (vifList) {
    for (const item of vifList.items) {
      const v = parseVifSpec(item.text);
      if (typeof v === 'string') throw new XlCfgError('override' in vifList.s.source ? vifList.s.source : { file, line: item.line }, 'vif = [...]', v);
      vifs.push(v);
    }
  }

  const boot = str('boot');
  if (boot !== undefined && !/^[acdn]{1,4}$/.test(boot)) fail(get('boot')!, `'${boot}' is not a boot order (expected letters from a, c, d, n, e.g. "cd")`);

  const serialList = list('serial');
  const serial = serialList ? serialList.items.map((a) => a.text) : [];

  const uuid = str('uuid');
  if (uuid !== undefined && !/^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$/.test(uuid)) {
    fail(get('uuid')!, `'${uuid}' is not a UUID (expected 32 hex digits as 8-4-4-4-12)`);
  }

  const kernel = path('kernel');
  if (type === 'pv' && kernel === undefined && disks.length === 0) {
    throw new XlCfgError(nameSetting!.source, 'kernel', 'a PV guest needs a kernel = "image" or a disk to boot from');
  }

  return {
    file,
    name,
    type,
    memory,
    maxmem,
    vcpus,
    maxvcpus,
    kernel,
    ramdisk: path('ramdisk'),
    cmdline: str('cmdline') ?? str('extra'),
    disks,
    vifs,
    onPoweroff: action('on_poweroff', 'destroy'),
    onReboot: action('on_reboot', 'restart'),
    onCrash: action('on_crash', 'destroy'),
    onSoftReset: action('on_soft_reset', 'soft-reset'),
    boot,
    serial,
    uuid: uuid?.toLowerCase(),
    settings,
    unknownKeys: [...settings.keys()].filter((k) => !KNOWN.has(k)),
  };
}

/** `vif = [ 'mac=00:16:3e:01:02:03, bridge=xenbr0' ]`: comma-separated key=value (xl-network-configuration(5)). */
export function parseVifSpec(spec: string): VifSpec | string {
  const keys: Record<string, string> = {};
  for (const raw of spec.split(',')) {
    const p = raw.trim();
    if (p === '') continue;
    const eq = p.indexOf('=');
    if (eq < 0) return `'${p}' is not key=value (for example mac=00:16:3e:00:00:01 or bridge=xenbr0)`;
    const k = p.slice(0, eq).trim();
    if (keys[k] !== undefined) return `${k} given twice`;
    keys[k] = p.slice(eq + 1).trim();
  }
  const mac = keys.mac;
  if (mac !== undefined && !/^[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}$/.test(mac)) return `mac '${mac}' is not six hex bytes separated by ':'`;
  if (mac !== undefined && parseInt(mac.slice(0, 2), 16) & 1) return `mac '${mac}' is a multicast address (the first byte must be even)`;
  return {
    mac: mac?.toLowerCase(),
    bridge: keys.bridge,
    ip: keys.ip,
    model: keys.model,
    type: keys.type,
    vifname: keys.vifname,
    script: keys.script,
    backend: keys.backend ?? '0',
    rate: keys.rate,
    keys,
    spec,
  };
}

function describe(v: XlValue): string {
  if (v.kind === 'list') return 'a [ list ]';
  return v.kind === 'number' ? `the number ${v.text}` : `the string '${v.text}'`;
}

function keyLabel(s: XlSetting): string {
  return s.value.kind === 'list' ? `${s.key} = [...]` : s.key;
}
