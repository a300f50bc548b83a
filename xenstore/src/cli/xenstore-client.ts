/**
 * The xenstore-* command-line tools (Xen's `tools/xenstore/xenstore_client.c`: one program, the
 * mode taken from the command name): read, write, ls, list, rm, exists, chmod, watch. They reach
 * xenstored the way Xen's do (XENSTORED_PATH, else XENSTORED_RUNDIR/socket), print the same
 * output and messages, escape binary values the same way, and run multi-key work in one
 * transaction retried on EAGAIN.
 */
import { XenstoreClient, XenstoreError, defaultSocketPath, type Permission, type XenstoreOps } from '@xenlab/xenstore-client';

export type Mode = 'read' | 'write' | 'ls' | 'list' | 'rm' | 'exists' | 'chmod' | 'watch';

const USAGE: Record<Mode, string> = {
  read: '[-h] [-p] [-s] [-R] key [...]',
  write: '[-h] [-s] [-R] key value [...]',
  rm: '[-h] [-s] [-t] key [...]',
  exists: '[-h] [-p] [-s] key [...]',
  list: '[-h] [-p] [-s] key [...]',
  ls: '[-h] [-f] [-p] [-s] [path]',
  chmod: '[-h] [-u] [-r] [-s] key <mode [modes...]>',
  watch: '[-h] [-n NR] key',
};

/** Which options each mode accepts (the rest print the usage). */
const MODE_OPTS: Record<Mode, string> = { read: 'psR', write: 'sR', rm: 'st', exists: 's', list: 'ps', ls: 'fps', chmod: 'urs', watch: 'ns' };
const LONG: Record<string, string> = { help: 'h', raw: 'R', flat: 'f', socket: 's', prefix: 'p', tidy: 't', upto: 'u', recurse: 'r', number: 'n' };

const STRERROR: Record<string, string> = {
  EINVAL: 'Invalid argument',
  EACCES: 'Permission denied',
  EEXIST: 'File exists',
  EISDIR: 'Is a directory',
  ENOENT: 'No such file or directory',
  ENOMEM: 'Cannot allocate memory',
  ENOSPC: 'No space left on device',
  EIO: 'Input/output error',
  ENOTEMPTY: 'Directory not empty',
  ENOSYS: 'Function not implemented',
  EROFS: 'Read-only file system',
  EBUSY: 'Device or resource busy',
  EAGAIN: 'Resource temporarily unavailable',
  EISCONN: 'Transport endpoint is already connected',
  E2BIG: 'Argument list too long',
  EPERM: 'Operation not permitted',
  ECONNREFUSED: 'Connection refused',
};

class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

/** Escapes a value for printing as Xen's `sanitise_value` does. */
export function sanitiseValue(v: Uint8Array): string {
  let s = '';
  for (const c of v) {
    if (c >= 0x20 && c <= 0x7e && c !== 0x5c) s += String.fromCharCode(c);
    else if (c === 0x09) s += '\\t';
    else if (c === 0x0a) s += '\\n';
    else if (c === 0x0d) s += '\\r';
    else if (c === 0x5c) s += '\\\\';
    else if (c < 8) s += '\\' + c.toString(8).padStart(3, '0');
    else s += '\\x' + c.toString(16).padStart(2, '0');
  }
  return s;
}

/** The inverse, as Xen's `unsanitise_value`: \t \n \r \\ \xHH \ooo; other escapes drop the backslash. */
export function unsanitiseValue(s: string): Uint8Array {
  const src = Buffer.from(s, 'utf8');
  const out: number[] = [];
  for (let i = 0; i < src.length; i++) {
    let c = src[i]!;
    if (c === 0x5c) {
      i++;
      if (i >= src.length) break;
      c = src[i]!;
      const ch = String.fromCharCode(c);
      if (ch === 't') c = 9;
      else if (ch === 'n') c = 10;
      else if (ch === 'r') c = 13;
      else if (ch === 'x') {
        const m = /^[0-9a-fA-F]{1,2}/.exec(src.subarray(i + 1, i + 3).toString('latin1'));
        c = m ? parseInt(m[0], 16) : 0;
        i += m ? m[0].length : 0;
      } else if (c >= 0x30 && c <= 0x37) {
        const m = /^[0-7]{1,3}/.exec(src.subarray(i, i + 3).toString('latin1'))!;
        c = parseInt(m[0], 8) & 0xff;
        i += m[0].length - 1;
      }
    }
    out.push(c);
  }
  return Uint8Array.from(out);
}

function strerror(e: unknown): string {
  if (e instanceof XenstoreError) return STRERROR[e.code] ?? e.code;
  const code = (e as { code?: string })?.code;
  if (code && STRERROR[code]) return STRERROR[code];
  return (e as Error)?.message ?? String(e);
}

interface Options {
  flags: Set<string>;
  number: number;
  args: string[];
}

export async function main(mode: Mode, argv: string[] = process.argv.slice(2)): Promise<number> {
  const prog = `xenstore-${mode}`;
  let stdout = '';
  let stderr = '';
  const warnx = (msg: string): void => {
    stderr += `${prog}: ${msg}\n`;
  };
  const errx = (msg: string): never => {
    warnx(msg);
    throw new Exit(1);
  };
  // Like Xen's, the usage line names the program as invoked (argv[0] there, the script here).
  const invoked = (process.argv[1] ?? prog).replace(/\.m?[jt]s$/, '');
  const usage = (): never => errx(`Usage: ${invoked} ${USAGE[mode]}`);

  const flush = async (): Promise<void> => {
    if (stdout) await new Promise<void>((r) => process.stdout.write(stdout, () => r()));
    if (stderr) await new Promise<void>((r) => process.stderr.write(stderr, () => r()));
    stdout = '';
    stderr = '';
  };

  let client: XenstoreClient | undefined;
  try {
    const o = parseOptions(mode, argv, usage);
    const n = o.args.length;
    if (mode === 'write' && n % 2 === 1) usage();
    if (mode !== 'ls' && n === 0) usage();
    const transaction = mode === 'read' ? n > 1 : mode === 'write' ? n > 2 : mode !== 'ls' && mode !== 'watch';

    try {
      client = await XenstoreClient.connect(defaultSocketPath());
    } catch (e) {
      errx(`xs_open: ${(e as Error).message}`);
    }
    const xs = client!;

    if (mode === 'watch') {
      for (const w of o.args) {
        try {
          await xs.watch(w, w).then((s) => streams.push(s));
        } catch {
          errx(`Unable to add watch on ${w}\n`);
        }
      }
      await watchLoop(o.number);
      return 0;
    }
    if (mode === 'ls') {
      const width = process.stdout.isTTY && process.stdout.columns ? process.stdout.columns - 2 : 80;
      await doLs(xs, o.args[0] ?? '/', o.flags.has('f'), o.flags.has('p'), width, (s) => (stdout += s), warnx, errx);
      return 0;
    }

    for (;;) {
      const out: string[] = [];
      const run = async (ops: XenstoreOps): Promise<number> => perform(mode, o, ops, out, warnx);
      let ret: number;
      if (!transaction) {
        ret = await run(xs);
      } else {
        const tx = await xs.transactionStart().catch(() => errx("couldn't start transaction"));
        ret = await run(tx);
        try {
          if (ret === 0) await tx.commit();
          else await tx.abort();
        } catch (e) {
          if (ret === 0 && e instanceof XenstoreError && e.code === 'EAGAIN') continue;
          errx("couldn't end transaction");
        }
      }
      stdout += out.join('');
      return ret;
    }

    async function watchLoop(max: number): Promise<void> {
      let count = 0;
      const merged = mergeStreams();
      while (max < 0 || count < max) {
        const ev = await merged();
        if (!ev) return;
        await new Promise<void>((r) => process.stdout.write(`${ev}\n`, () => r()));
        count++;
      }
    }
  } catch (e) {
    if (e instanceof Exit) {
      if (!e.message.startsWith('exit ')) warnx(e.message);
      return e.code;
    }
    warnx(strerror(e));
    return 1;
  } finally {
    await flush();
    client?.close();
  }
}

// Watch streams of this process (xenstore-watch sets one per key, token = key).
const streams: Array<import('@xenlab/xenstore-client').WatchStream> = [];
function mergeStreams(): () => Promise<string | undefined> {
  const queue: string[] = [];
  let wake: (() => void) | undefined;
  let live = streams.length;
  for (const s of streams) {
    void (async () => {
      for (;;) {
        const ev = await s.next();
        if (!ev) break;
        queue.push(ev.path);
        wake?.();
      }
      live--;
      wake?.();
    })();
  }
  return async () => {
    while (queue.length === 0 && live > 0) await new Promise<void>((r) => (wake = r));
    return queue.shift();
  };
}

function parseOptions(mode: Mode, argv: string[], usage: () => never): Options {
  const o: Options = { flags: new Set(), number: -1, args: [] };
  const allowed = MODE_OPTS[mode];
  const take = (f: string, next: () => string | undefined): void => {
    if (f === 'h' || !allowed.includes(f)) usage();
    if (f === 'n') {
      const v = next();
      if (v === undefined) usage();
      o.number = Number.parseInt(v!, 10) || 0;
    }
    o.flags.add(f);
  };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      i++;
      break;
    }
    if (a.startsWith('--')) {
      const [name, val] = a.slice(2).split('=', 2);
      const f = LONG[name!];
      if (!f) usage();
      take(f!, () => val ?? argv[++i]);
    } else if (a.startsWith('-') && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const f = a[j]!;
        take(f, () => (j + 1 < a.length ? a.slice(j + 1) : argv[++i]));
        if (f === 'n') break;
      }
    } else {
      o.args.push(a);
    }
  }
  o.args.push(...argv.slice(i));
  return o;
}

async function perform(mode: Mode, o: Options, xs: XenstoreOps, out: string[], warnx: (m: string) => void): Promise<number> {
  const a = o.args;
  switch (mode) {
    case 'read':
      for (const key of a) {
        const v = await xs.read(key).catch(() => undefined);
        if (!v) {
          warnx(`couldn't read path ${key}`);
          return 1;
        }
        out.push(`${o.flags.has('p') ? `${key}: ` : ''}${o.flags.has('R') ? Buffer.from(v).toString('latin1') : sanitiseValue(v)}\n`);
      }
      return 0;
    case 'write':
      for (let i = 0; i < a.length; i += 2) {
        const value = o.flags.has('R') ? Buffer.from(a[i + 1]!, 'utf8') : unsanitiseValue(a[i + 1]!);
        const ok = await xs.write(a[i]!, value).then(
          () => true,
          () => false,
        );
        if (!ok) {
          warnx(`could not write path ${a[i]}`);
          return 1;
        }
      }
      return 0;
    case 'rm':
      for (const key of a) {
        let path = key;
        for (;;) {
          const ok = await xs.rm(path).then(
            () => true,
            () => false,
          );
          if (!ok) {
            warnx(`could not remove path ${path}`);
            return 1;
          }
          if (!o.flags.has('t')) break;
          // Tidy: remove parents left with no value and no children.
          const slash = path.lastIndexOf('/');
          if (slash < 0) break;
          path = path.slice(0, slash);
          const v = await xs.read(path).catch(() => undefined);
          if (!v || v.length !== 0) break;
          const kids = await xs.directory(path).catch(() => undefined);
          if (!kids || kids.length !== 0) break;
        }
      }
      return 0;
    case 'exists':
      for (const key of a) {
        const v = await xs.read(key).catch(() => undefined);
        if (!v) return 1;
      }
      return 0;
    case 'list':
      for (const key of a) {
        const kids = await xs.directory(key).catch(() => undefined);
        if (!kids) {
          warnx(`could not list path ${key}`);
          return 1;
        }
        for (const k of kids) out.push(`${o.flags.has('p') ? `${key}/` : ''}${k}\n`);
      }
      return 0;
    case 'chmod': {
      const [path, ...modes] = a;
      const perms: Permission[] = modes.map((m) => {
        const l = m[0];
        if (l !== 'n' && l !== 'r' && l !== 'w' && l !== 'b') {
          throw Object.assign(new Exit(1), { message: `Invalid permission specification: '${l ?? ''}'` });
        }
        return { id: Number.parseInt(m.slice(1), 10) || 0, read: l === 'r' || l === 'b', write: l === 'w' || l === 'b' };
      });
      await chmod(xs, path!, perms, o.flags.has('u'), o.flags.has('r'));
      return 0;
    }
    default:
      return 0;
  }
}

async function chmod(xs: XenstoreOps, path: string, perms: Permission[], upto: boolean, recurse: boolean): Promise<void> {
  if (!path) return;
  try {
    await xs.setPerms(path, perms);
  } catch (e) {
    throw Object.assign(new Exit(1), { message: `Error occurred setting permissions on '${path}': ${strerror(e)}` });
  }
  if (upto) {
    const slash = path.lastIndexOf('/');
    if (slash < 0) throw Object.assign(new Exit(1), { message: `Unable to locate path separator '/' in '${path}'` });
    await chmod(xs, path.slice(0, slash), perms, true, false);
  }
  if (recurse) {
    const kids = await xs.directory(path).catch(() => [] as string[]);
    for (const k of kids) await chmod(xs, `${path}/${k}`, perms, false, true);
  }
}

const TAG_LEN = ' = "..."'.length;

async function doLs(
  xs: XenstoreClient,
  path: string,
  flat: boolean,
  showPerms: boolean,
  termWidth: number,
  print: (s: string) => void,
  warnx: (m: string) => void,
  errx: (m: string) => never,
  depth = 0,
): Promise<void> {
  const maxWidth = flat ? Math.floor(0x7fffffff / 2) : termWidth;
  const desiredWidth = flat ? 0 : 60;
  let kids: string[];
  try {
    kids = await xs.directory(path);
  } catch (e) {
    return errx(`xs_directory (${path}): ${strerror(e)}`);
  }
  for (const name of kids) {
    const full = `${path}${path.endsWith('/') ? '' : '/'}${name}`;
    let line = '';
    let linewid = 0;
    if (flat) {
      line += full;
    } else {
      line += ' '.repeat(depth);
      linewid = depth;
      const prec = maxWidth - TAG_LEN - linewid;
      const shown = prec < 0 ? name : name.slice(0, prec);
      line += shown;
      linewid += shown.length;
    }
    const val = await xs.read(full).catch(() => undefined);
    if (val === undefined) {
      line += ':\n';
    } else {
      const s = sanitiseValue(val);
      if (maxWidth < linewid + val.length + TAG_LEN) {
        const prec = maxWidth - TAG_LEN - linewid;
        line += ` = "${prec < 0 ? s : s.slice(0, prec)}\\..."`;
      } else {
        const part = ` = "${s}"`;
        line += part;
        linewid += part.length;
        if (showPerms) {
          line += ' ';
          for (linewid++; linewid < Math.min(desiredWidth, maxWidth); linewid++) line += linewid & 1 ? '.' : ' ';
        }
      }
    }
    if (showPerms) {
      const perms = await xs.getPerms(full).catch((e: unknown) => e);
      if (perms instanceof Error) {
        warnx(`\ncould not access permissions for ${name}: ${strerror(perms)}`);
      } else {
        line += `  (${(perms as Permission[]).map((p) => (p.read ? (p.write ? 'b' : 'r') : p.write ? 'w' : 'n') + p.id).join(',')})`;
      }
    }
    print(line + '\n');
    await doLs(xs, full, flat, showPerms, termWidth, print, warnx, errx, depth + 1);
  }
}

/** Entry for the per-tool scripts: runs the mode named by the script and exits with its status. */
export async function run(mode: Mode): Promise<never> {
  const code = await main(mode);
  process.exit(code);
}
