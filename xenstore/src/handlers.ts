/**
 * The dispatch table from xs_wire operation to handler (the C xenstored's `wire_funcs[]`):
 * reading `WIRE_TABLE` answers "what can xenstored do?". Each handler parses its payload (Xen's
 * argument rules: NUL-terminated strings, exact counts), checks access and returns the reply
 * payload plus, for a change outside a transaction, the view for the core to install.
 */
import {
  XENSTORE_PAYLOAD_MAX,
  XsType,
  bytesToString,
  toBytes,
  type XsMessage,
  type XsTypeName,
} from '@xenlab/xen-public';
import { watchKey, type Connection } from './connection.ts';
import { XsError, check } from './errors.ts';
import { domainPath, isSpecialPath, resolvePath } from './paths.ts';
import { formatPerms, parsePerm, type Perms } from './perms.ts';
import { isQuotaName } from './quota.ts';
import { Transaction, View, directoryPayload, type XsNode } from './store.ts';
import type { Xenstored } from './xenstored.ts';

export interface Reply {
  payload: Uint8Array | string;
  /** Changes to install (requests outside a transaction). */
  view?: View;
}

export interface WireFunc {
  fn: (xs: Xenstored, c: Connection, m: XsMessage) => Reply;
  /** Only dom0 and socket clients may call it (EACCES otherwise). */
  priv?: boolean;
  /** Refused on the read-only socket (EROFS). */
  writes?: boolean;
}

/** Operations a client may send; the others are answered with ENOSYS. */
type RequestName = Exclude<XsTypeName, 'WATCH_EVENT' | 'ERROR' | 'RESTRICT' | 'INVALID'>;

const OK = toBytes('OK\0');

// --- Payload parsing ----------------------------------------------------------------------------

/** Exactly `n` NUL-terminated strings and nothing after them (EINVAL otherwise). */
function args(m: XsMessage, n: number): string[] {
  const p = m.payload;
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < p.length; i++) {
    if (p[i] === 0) {
      out.push(bytesToString(p.subarray(start, i)));
      start = i + 1;
    }
  }
  if (start !== p.length || out.length !== n) throw new XsError('EINVAL', `expected ${n} NUL-terminated argument(s)`);
  return out;
}

/** All NUL-terminated strings; text after the last NUL is an error. */
function allArgs(m: XsMessage): string[] {
  const p = m.payload;
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < p.length; i++) {
    if (p[i] === 0) {
      out.push(bytesToString(p.subarray(start, i)));
      start = i + 1;
    }
  }
  if (start !== p.length) throw new XsError('EINVAL', 'argument is not NUL-terminated');
  return out;
}

function resolve(c: Connection, p: string, allowSpecial = false): string {
  return resolvePath(p, c.domid, allowSpecial, c.privileged ? undefined : c.quotas.maxPathLength);
}

function pathArg(c: Connection, m: XsMessage): string {
  return resolve(c, args(m, 1)[0]!);
}

function parseDomid(s: string): number {
  check(/^[0-9]{1,5}$/.test(s), 'EINVAL', `bad domid ${JSON.stringify(s.slice(0, 16))}`);
  const d = Number(s);
  check(d < 0x7ff0, 'EINVAL', `domid ${d} is reserved`);
  return d;
}

function parseUint(s: string, what: string): number {
  check(/^[0-9]{1,10}$/.test(s) && Number(s) <= 0xffffffff, 'EINVAL', `bad ${what}`);
  return Number(s);
}

function parsePerms(list: string[]): Perms {
  check(list.length > 0, 'EINVAL', 'no permissions');
  return list.map(parsePerm);
}

// --- Transactions ---------------------------------------------------------------------------------

function txnOf(c: Connection, m: XsMessage): Transaction | undefined {
  if (m.txId === 0) return undefined;
  const t = c.txns.get(m.txId);
  if (!t) throw new XsError('ENOENT', `no transaction ${m.txId}`);
  return t;
}

/** The view a read sees: the transaction's snapshot or the current tree. */
function readView(xs: Xenstored, c: Connection, m: XsMessage): { view: View; txn: Transaction | undefined } {
  const txn = txnOf(c, m);
  return { view: txn ? txn.view : new View(xs.store, xs.store.root, false), txn };
}

function checkTxnSize(c: Connection, txn: Transaction | undefined): void {
  if (txn && !c.privileged && txn.size > c.quotas.maxTransactionNodes) throw new XsError('ENOSPC', 'transaction touches too many nodes');
}

type MutationOp = 'write' | 'mkdir' | 'rm' | 'setPerms';

/** Runs a change in the caller's transaction (recorded for commit) or on a fresh view to install. */
function mutate(xs: Xenstored, c: Connection, m: XsMessage, op: MutationOp, abs: string, extra: { value?: Uint8Array; perms?: Perms }): Reply {
  const txn = txnOf(c, m);
  if (txn) {
    txn.apply(
      op === 'write' ? { op, c, abs, value: extra.value! } : op === 'setPerms' ? { op, c, abs, perms: extra.perms! } : { op, c, abs },
    );
    checkTxnSize(c, txn);
    return { payload: OK };
  }
  const view = new View(xs.store, xs.store.root, false);
  view.inPlace = true;
  switch (op) {
    case 'write':
      view.write(c, abs, extra.value!);
      break;
    case 'mkdir':
      view.mkdir(c, abs);
      break;
    case 'rm':
      view.rm(c, abs);
      break;
    case 'setPerms':
      view.setPerms(c, abs, extra.perms!);
      break;
  }
  return { payload: OK, view };
}

// --- Handlers --------------------------------------------------------------------------------------

function read(xs: Xenstored, c: Connection, m: XsMessage): Reply {
  const abs = pathArg(c, m);
  const { view, txn } = readView(xs, c, m);
  const value = view.read(c, abs);
  checkTxnSize(c, txn);
  return { payload: value };
}

function directory(xs: Xenstored, c: Connection, m: XsMessage): Reply {
  const abs = pathArg(c, m);
  const { view, txn } = readView(xs, c, m);
  const n = view.directory(c, abs);
  checkTxnSize(c, txn);
  return { payload: directoryPayload(n) };
}

/** `path\0offset\0` -> `gen\0names…`, the last chunk ending in an extra NUL. */
function directoryPart(xs: Xenstored, c: Connection, m: XsMessage): Reply {
  const [p, off] = args(m, 2);
  const abs = resolve(c, p!);
  const offset = parseUint(off!, 'offset');
  const { view, txn } = readView(xs, c, m);
  const n: XsNode = view.directory(c, abs);
  checkTxnSize(c, txn);
  let all = '';
  for (const name of n.children.keys()) all += name + '\0';
  const head = `${n.gen}\0`;
  if (offset >= all.length) return { payload: head + '\0' };
  const room = XENSTORE_PAYLOAD_MAX - head.length - 1;
  let chunk = all.slice(offset);
  if (chunk.length <= room) return { payload: head + chunk + '\0' };
  chunk = chunk.slice(0, room);
  chunk = chunk.slice(0, chunk.lastIndexOf('\0') + 1);
  check(chunk.length > 0, 'E2BIG', 'child name too long for one chunk');
  return { payload: head + chunk };
}

function write(xs: Xenstored, c: Connection, m: XsMessage): Reply {
  const p = m.payload;
  const nul = p.indexOf(0);
  check(nul >= 0, 'EINVAL', 'WRITE needs path\\0value');
  const abs = resolve(c, bytesToString(p.subarray(0, nul)));
  return mutate(xs, c, m, 'write', abs, { value: p.slice(nul + 1) });
}

function mkdir(xs: Xenstored, c: Connection, m: XsMessage): Reply {
  return mutate(xs, c, m, 'mkdir', pathArg(c, m), {});
}

function rm(xs: Xenstored, c: Connection, m: XsMessage): Reply {
  return mutate(xs, c, m, 'rm', pathArg(c, m), {});
}

function getPerms(xs: Xenstored, c: Connection, m: XsMessage): Reply {
  const abs = resolve(c, args(m, 1)[0]!, true);
  if (isSpecialPath(abs)) return { payload: formatPerms(xs.specialPerms.get(abs)!).join('\0') + '\0' };
  const { view, txn } = readView(xs, c, m);
  const perms = view.getPerms(c, abs);
  checkTxnSize(c, txn);
  return { payload: formatPerms(perms).join('\0') + '\0' };
}

function setPerms(xs: Xenstored, c: Connection, m: XsMessage): Reply {
  const [p, ...list] = allArgs(m);
  check(p !== undefined, 'EINVAL', 'SET_PERMS needs a path');
  const abs = resolve(c, p, true);
  const perms = parsePerms(list);
  if (isSpecialPath(abs)) {
    check(c.privileged, 'EACCES', 'special nodes belong to dom0');
    xs.specialPerms.set(abs, perms);
    return { payload: OK };
  }
  return mutate(xs, c, m, 'setPerms', abs, { perms });
}

function watch(xs: Xenstored, c: Connection, m: XsMessage): Reply {
  const [p, token] = args(m, 2);
  const abs = resolve(c, p!, true);
  check(!c.watches.has(watchKey(abs, token!)), 'EEXIST', 'watch already set');
  if (!c.privileged && c.watches.size >= c.quotas.maxWatches) throw new XsError('E2BIG', 'watch quota reached');
  const w = { conn: c, path: p!, abs, token: token!, relative: p![0] !== '/' && p![0] !== '@' };
  xs.addWatch(w);
  xs.afterReply(() => xs.sendEvent(w, w.path));
  return { payload: OK };
}

function unwatch(xs: Xenstored, c: Connection, m: XsMessage): Reply {
  const [p, token] = args(m, 2);
  const abs = resolve(c, p!, true);
  const w = c.watches.get(watchKey(abs, token!));
  check(w, 'ENOENT', 'no such watch');
  xs.removeWatch(w);
  return { payload: OK };
}

function transactionStart(xs: Xenstored, c: Connection, m: XsMessage): Reply {
  check(m.txId === 0, 'EBUSY', 'TRANSACTION_START inside a transaction');
  if (!c.privileged && c.txns.size >= c.quotas.maxTransactions) throw new XsError('ENOSPC', 'transaction quota reached');
  const id = c.allocTxId();
  c.txns.set(id, new Transaction(id, xs.store));
  return { payload: `${id}\0` };
}

function transactionEnd(xs: Xenstored, c: Connection, m: XsMessage): Reply {
  const txn = c.txns.get(m.txId);
  check(m.txId !== 0 && txn, 'ENOENT', `no transaction ${m.txId}`);
  const [how] = args(m, 1);
  check(how === 'T' || how === 'F', 'EINVAL', 'TRANSACTION_END takes T or F');
  c.txns.delete(m.txId);
  txn.release();
  if (how === 'F') return { payload: OK };
  try {
    const view = txn.commit(xs.store);
    xs.stats.commits++;
    return { payload: OK, view };
  } catch (e) {
    if (e instanceof XsError && e.xenName === 'EAGAIN') xs.stats.conflicts++;
    throw e;
  }
}

function introduce(xs: Xenstored, _c: Connection, m: XsMessage): Reply {
  const [d, gfn, port] = args(m, 3);
  const domid = parseDomid(d!);
  check(/^-?[0-9]{1,20}$/.test(gfn!), 'EINVAL', 'bad gfn');
  xs.introduce(domid, BigInt(gfn!), parseUint(port!, 'event channel'));
  return { payload: OK };
}

function release(xs: Xenstored, _c: Connection, m: XsMessage): Reply {
  const domid = parseDomid(args(m, 1)[0]!);
  check(domid !== 0, 'EINVAL', 'dom0 cannot be released');
  xs.release(domid);
  return { payload: OK };
}

function getDomainPath(_xs: Xenstored, _c: Connection, m: XsMessage): Reply {
  return { payload: domainPath(parseDomid(args(m, 1)[0]!)) + '\0' };
}

function isDomainIntroduced(xs: Xenstored, _c: Connection, m: XsMessage): Reply {
  const domid = parseDomid(args(m, 1)[0]!);
  return { payload: domid === 0 || xs.domains.has(domid) ? 'T\0' : 'F\0' };
}

function resume(xs: Xenstored, _c: Connection, m: XsMessage): Reply {
  const dom = xs.domains.get(parseDomid(args(m, 1)[0]!));
  check(dom, 'ENOENT', 'domain not introduced');
  dom.shutdown = false;
  return { payload: OK };
}

function setTarget(xs: Xenstored, _c: Connection, m: XsMessage): Reply {
  const [d, t] = args(m, 2);
  const dom = xs.domains.get(parseDomid(d!));
  check(dom, 'ENOENT', 'domain not introduced');
  dom.target = parseDomid(t!);
  if (dom.conn) dom.conn.target = dom.target;
  return { payload: OK };
}

function resetWatches(xs: Xenstored, c: Connection, _m: XsMessage): Reply {
  xs.resetConnection(c);
  return { payload: OK };
}

function control(xs: Xenstored, _c: Connection, m: XsMessage): Reply {
  const [cmd, ...rest] = allArgs(m);
  const sub = CONTROL[cmd ?? ''];
  check(sub, 'EINVAL', `unknown control command ${JSON.stringify(cmd)}`);
  let text = sub.fn(xs, rest);
  if (text.length > XENSTORE_PAYLOAD_MAX - 1) text = text.slice(0, XENSTORE_PAYLOAD_MAX - 17) + '\n...(truncated)\n';
  return { payload: text + '\0' };
}

/** XS_CONTROL sub-commands (`xenstore-control` in Xen). */
const CONTROL: Record<string, { help: string; fn: (xs: Xenstored, args: string[]) => string }> = {
  help: { help: 'list the commands', fn: () => Object.entries(CONTROL).map(([k, v]) => `${k}: ${v.help}`).join('\n') + '\n' },
  check: {
    help: 'check the per-domain node counts against the tree',
    fn: (xs) => {
      const real = xs.store.recount();
      const bad: string[] = [];
      for (const d of new Set([...real.keys(), ...xs.store.owned.keys()])) {
        if ((real.get(d) ?? 0) !== xs.store.ownedBy(d)) bad.push(`domain ${d}: counted ${xs.store.ownedBy(d)}, tree has ${real.get(d) ?? 0}`);
      }
      return bad.length ? bad.join('\n') + '\n' : 'OK';
    },
  },
  print: {
    help: 'print <text>: write text to the daemon log',
    fn: (xs, a) => {
      xs.log(`control: ${a.join(' ')}`);
      return 'OK';
    },
  },
  quota: {
    help: 'quota [domid]: show quotas and per-domain use',
    fn: (xs, a) => {
      const q = xs.quotas;
      const lines = a.length ? [] : Object.entries(q).map(([k, v]) => `${k} ${v}`);
      const doms = new Set<number>([...xs.store.owned.keys(), ...xs.domains.keys()]);
      if (a.length) {
        doms.clear();
        doms.add(parseDomid(a[0]!));
      }
      for (const d of [...doms].sort((x, y) => x - y)) {
        const conns = [...xs.connections].filter((c) => !c.socket && c.domid === d);
        const watches = conns.reduce((n, c) => n + c.watches.size, 0);
        const txns = conns.reduce((n, c) => n + c.txns.size, 0);
        const dropped = conns.reduce((n, c) => n + c.stats.eventsDropped, 0);
        lines.push(`domain ${d}: nodes ${xs.store.ownedBy(d)}/${q.maxNodes} watches ${watches}/${q.maxWatches} transactions ${txns}/${q.maxTransactions} events-dropped ${dropped}`);
      }
      return lines.join('\n') + '\n';
    },
  },
  'quota-set': {
    help: 'quota-set <name> <value>: change a quota',
    fn: (xs, a) => {
      const [name, value] = a;
      check(name && isQuotaName(name) && value && /^[0-9]{1,9}$/.test(value), 'EINVAL', 'quota-set <name> <value>');
      xs.quotas[name] = Number(value);
      return 'OK';
    },
  },
  tree: {
    help: 'tree [path]: dump the tree with values and permissions',
    fn: (xs, a) => {
      const root = a[0] ?? '/';
      const n = xs.store.get(root);
      check(n, 'ENOENT', root);
      const lines: string[] = [];
      let size = 0;
      const walk = (path: string, node: XsNode): void => {
        if (size > XENSTORE_PAYLOAD_MAX) return;
        const line = `${path} = ${JSON.stringify(bytesToString(node.value))} (${formatPerms(node.perms).join(',')})`;
        lines.push(line);
        size += line.length + 1;
        for (const [name, child] of node.children) walk(path === '/' ? `/${name}` : `${path}/${name}`, child);
      };
      walk(root, n);
      return lines.join('\n') + '\n';
    },
  },
  stats: { help: 'daemon counters as JSON', fn: (xs) => JSON.stringify({ ...xs.stats, connections: xs.connections.size, domains: xs.domains.size }) + '\n' },
  connections: {
    help: 'list connections',
    fn: (xs) =>
      [...xs.connections].map((c) => `${c.label}: domid ${c.domid} watches ${c.watches.size} transactions ${c.txns.size} requests ${c.stats.requests}`).join('\n') + '\n',
  },
};

/** Every request type, by name; TypeScript checks the table is complete. */
export const WIRE_TABLE = {
  CONTROL: { fn: control, priv: true },
  DIRECTORY: { fn: directory },
  READ: { fn: read },
  GET_PERMS: { fn: getPerms },
  WATCH: { fn: watch },
  UNWATCH: { fn: unwatch },
  TRANSACTION_START: { fn: transactionStart },
  TRANSACTION_END: { fn: transactionEnd },
  INTRODUCE: { fn: introduce, priv: true, writes: true },
  RELEASE: { fn: release, priv: true, writes: true },
  GET_DOMAIN_PATH: { fn: getDomainPath },
  WRITE: { fn: write, writes: true },
  MKDIR: { fn: mkdir, writes: true },
  RM: { fn: rm, writes: true },
  SET_PERMS: { fn: setPerms, writes: true },
  IS_DOMAIN_INTRODUCED: { fn: isDomainIntroduced, priv: true },
  RESUME: { fn: resume, priv: true, writes: true },
  SET_TARGET: { fn: setTarget, priv: true, writes: true },
  RESET_WATCHES: { fn: resetWatches },
  DIRECTORY_PART: { fn: directoryPart },
} as const satisfies Record<RequestName, WireFunc>;

/** The table indexed by operation number, as `process()` uses it. */
export const WIRE_FUNCS: readonly (WireFunc | undefined)[] = (() => {
  const t: (WireFunc | undefined)[] = [];
  for (const [name, f] of Object.entries(WIRE_TABLE)) t[XsType[name as RequestName]] = f;
  return t;
})();

