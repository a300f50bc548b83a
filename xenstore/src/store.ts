/**
 * The xenstore tree: nodes, the operations on them with Xen's permission rules, per-domain node
 * accounting for quotas, and transactions. Follows the C xenstored's `xenstored_core.c` and
 * `xenstored_transaction.c` in behaviour; the data structure is oxenstored's idea instead: the
 * tree is persistent (a change copies the nodes on the path to the root), so a transaction's
 * snapshot is just the root it started from.
 *
 * Every request works on a `View` (a root plus what it changed); the daemon installs the view
 * when the request succeeds, so a failing request never leaves half its work behind. Each node
 * carries `gen`, the store-wide generation of the last change to its value, permissions or set
 * of children names; a transaction records the generation of every node it looked at and its
 * commit fails with EAGAIN if any of them moved.
 */
import { XENSTORE_PAYLOAD_MAX } from '@xenlab/xen-public';
import { XsError, check } from './errors.ts';
import { parentOf, segments } from './paths.ts';
import { ACCESS_OWNER, ACCESS_READ, ACCESS_WRITE, accessFor, type Caller, type Perms } from './perms.ts';
import type { Quotas } from './quota.ts';

export class XsNode {
  constructor(
    readonly value: Uint8Array,
    readonly perms: Perms,
    readonly children: ReadonlyMap<string, XsNode>,
    readonly gen: number,
  ) {}
}

const EMPTY = new Uint8Array(0);
const NO_CHILDREN: ReadonlyMap<string, XsNode> = new Map();
/** Absent nodes are recorded with this generation in a transaction's read set. */
const ABSENT = -1;

/** A change watchers may hear about: `perms` decide who may see it. */
export interface ChangeEvent {
  path: string;
  perms: Perms;
  /** RM: also fires watches set below `path`, with their own path. */
  recursive: boolean;
}

/** A caller as the store sees it: identity plus quotas (unprivileged callers only). */
export interface StoreCaller extends Caller {
  readonly quotas: Quotas;
}

export class Store {
  root: XsNode;
  private genCounter = 1;
  /** Nodes owned per domain (perms[0].id), for the node quota. */
  readonly owned = new Map<number, number>();
  /** Open transactions: while any holds a snapshot, every change copies its path. */
  readonly liveTransactions = new Set<Transaction>();

  constructor() {
    const n0: Perms = [{ id: 0, r: false, w: false }];
    let root = new XsNode(EMPTY, n0, NO_CHILDREN, this.nextGen());
    const v = new View(this, root, false);
    for (const p of ['/local', '/local/domain', '/tool', '/tool/xenstored']) v.put(p, new XsNode(EMPTY, n0, NO_CHILDREN, this.nextGen()));
    root = v.root;
    this.root = root;
    for (const [d, n] of this.recount()) this.owned.set(d, n);
  }

  nextGen(): number {
    return this.genCounter++;
  }

  ownedBy(domid: number): number {
    return this.owned.get(domid) ?? 0;
  }

  /** Makes a request's work visible: new root, node counts; returns the events to fire. */
  install(v: View): ChangeEvent[] {
    this.root = v.root;
    if (v.changesOwners) for (const [d, n] of v.ownedDelta) {
      const c = (this.owned.get(d) ?? 0) + n;
      if (c === 0) this.owned.delete(d);
      else this.owned.set(d, c);
    }
    return v.events;
  }

  /** Walks `abs` from the current root (no access tracking). */
  get(abs: string): XsNode | undefined {
    return lookupIn(this.root, abs);
  }

  /** Recounts nodes per owner from the tree (CONTROL check). */
  recount(): Map<number, number> {
    const m = new Map<number, number>();
    const walk = (n: XsNode): void => {
      const o = n.perms[0]!.id;
      m.set(o, (m.get(o) ?? 0) + 1);
      for (const c of n.children.values()) walk(c);
    };
    walk(this.root);
    return m;
  }
}

function lookupIn(root: XsNode, abs: string): XsNode | undefined {
  if (abs === '/') return root;
  let n: XsNode | undefined = root;
  let start = 1;
  for (;;) {
    const end = abs.indexOf('/', start);
    const name = end < 0 ? abs.slice(start) : abs.slice(start, end);
    n = n.children.get(name);
    if (!n || end < 0) return n;
    start = end + 1;
  }
}

/** A request's or a transaction's working copy of the tree. */
export class View {
  /** Transaction read set: path -> generation seen (ABSENT if missing); null outside transactions. */
  readonly accessed: Map<string, number> | null;
  /**
   * May a value update replace the node inside its parent instead of copying the path? Only for
   * a single request's view while no transaction holds a snapshot (set by the handler): the
   * update's checks all come before the change, so nothing can fail after it.
   */
  inPlace = false;
  private delta: Map<number, number> | undefined;
  private changes: ChangeEvent[] | undefined;

  constructor(
    readonly store: Store,
    public root: XsNode,
    trackAccess: boolean,
  ) {
    this.accessed = trackAccess ? new Map() : null;
  }

  lookup(abs: string): XsNode | undefined {
    const n = lookupIn(this.root, abs);
    if (this.accessed && !this.accessed.has(abs)) this.accessed.set(abs, n ? n.gen : ABSENT);
    return n;
  }

  get changesOwners(): boolean {
    return this.delta !== undefined;
  }

  /** Node-count changes per owner (allocated on first change: most views only read). */
  get ownedDelta(): Map<number, number> {
    return (this.delta ??= new Map());
  }

  /** Changes watchers may hear about. */
  get events(): ChangeEvent[] {
    return (this.changes ??= []);
  }

  owned(domid: number): number {
    return this.store.ownedBy(domid) + (this.delta?.get(domid) ?? 0);
  }

  private count(domid: number, delta: number): void {
    this.ownedDelta.set(domid, (this.ownedDelta.get(domid) ?? 0) + delta);
  }

  /** Replaces (or with `undefined`, removes) the node at `abs`; its parent must exist. */
  put(abs: string, node: XsNode | undefined): void {
    const segs = segments(abs);
    check(segs.length > 0, 'EINVAL', 'cannot replace the root');
    const gen = this.store.nextGen();
    this.root = putAt(this.root, segs, 0, node, gen);
  }

  /** Reads `abs` with access `want`, or throws ENOENT / EACCES as the C xenstored does. */
  need(c: Caller, abs: string, want: number): XsNode {
    const n = this.lookup(abs);
    if (!n) throw new XsError(this.errnoFromParents(c, abs), abs);
    if ((accessFor(c, n.perms) & want) !== want) throw new XsError('EACCES', abs);
    return n;
  }

  /** A missing node is ENOENT, unless the caller could not read its nearest existing ancestor. */
  private errnoFromParents(c: Caller, abs: string): 'ENOENT' | 'EACCES' {
    let p = abs;
    while (p !== '/') {
      p = parentOf(p);
      const n = this.lookup(p);
      if (n) return accessFor(c, n.perms) & ACCESS_READ ? 'ENOENT' : 'EACCES';
    }
    return 'ENOENT';
  }

  // --- The operations (each used by the wire handlers and by transaction replay) ----------------

  read(c: Caller, abs: string): Uint8Array {
    return this.need(c, abs, ACCESS_READ).value;
  }

  directory(c: Caller, abs: string): XsNode {
    return this.need(c, abs, ACCESS_READ);
  }

  getPerms(c: Caller, abs: string): Perms {
    return this.need(c, abs, ACCESS_READ).perms;
  }

  write(c: StoreCaller, abs: string, value: Uint8Array): void {
    const n = this.lookup(abs);
    if (n) {
      if (!(accessFor(c, n.perms) & ACCESS_WRITE)) throw new XsError('EACCES', abs);
      checkEntrySize(c, value, n.children);
      const parent = this.inPlace && this.store.liveTransactions.size === 0 && abs !== '/' ? this.lookup(parentOf(abs)) : undefined;
      if (parent) {
        (parent.children as Map<string, XsNode>).set(abs.slice(abs.lastIndexOf('/') + 1), new XsNode(value, n.perms, n.children, this.store.nextGen()));
      } else {
        this.put(abs, new XsNode(value, n.perms, n.children, 0));
      }
      this.events.push({ path: abs, perms: n.perms, recursive: false });
    } else {
      this.create(c, abs, value);
      this.events.push({ path: abs, perms: this.lookup(abs)!.perms, recursive: false });
    }
  }

  /** Returns false when the node already existed (no change, no event). */
  mkdir(c: StoreCaller, abs: string): boolean {
    const n = this.lookup(abs);
    if (n) {
      if (!(accessFor(c, n.perms) & ACCESS_WRITE)) throw new XsError('EACCES', abs);
      return false;
    }
    this.create(c, abs, EMPTY);
    this.events.push({ path: abs, perms: this.lookup(abs)!.perms, recursive: false });
    return true;
  }

  /** Creates `abs` and any missing parents (empty values), inheriting the nearest parent's perms. */
  private create(c: StoreCaller, abs: string, value: Uint8Array): void {
    const missing: string[] = [abs];
    let p = parentOf(abs);
    let parent = this.lookup(p);
    while (!parent) {
      missing.push(p);
      p = parentOf(p);
      parent = this.lookup(p);
    }
    if (!(accessFor(c, parent.perms) & ACCESS_WRITE)) throw new XsError('EACCES', abs);
    let perms = parent.perms;
    if (!c.privileged && perms[0]!.id !== c.domid) perms = [{ ...perms[0]!, id: c.domid }, ...perms.slice(1)];
    const owner = perms[0]!.id;
    if (!c.privileged) {
      checkEntrySize(c, value, NO_CHILDREN);
      if (this.owned(owner) + missing.length > c.quotas.maxNodes) throw new XsError('ENOSPC', `node quota of domain ${owner}`);
    }
    for (let i = missing.length - 1; i >= 0; i--) {
      this.put(missing[i]!, new XsNode(i === 0 ? value : EMPTY, perms, NO_CHILDREN, 0));
    }
    this.count(owner, missing.length);
  }

  /** RM: a missing node is fine, a missing parent is ENOENT. Returns false if nothing was removed. */
  rm(c: Caller, abs: string): boolean {
    check(abs !== '/', 'EINVAL', 'cannot remove /');
    const n = this.lookup(abs);
    if (!n) {
      const parent = this.lookup(parentOf(abs));
      if (!parent) throw new XsError('ENOENT', parentOf(abs));
      if (!(accessFor(c, parent.perms) & ACCESS_READ)) throw new XsError('EACCES', abs);
      return false;
    }
    if (!(accessFor(c, n.perms) & ACCESS_WRITE)) throw new XsError('EACCES', abs);
    this.lookup(parentOf(abs));
    const walk = (path: string, node: XsNode): void => {
      if (this.accessed && !this.accessed.has(path)) this.accessed.set(path, node.gen);
      this.count(node.perms[0]!.id, -1);
      for (const [name, child] of node.children) walk(`${path}/${name}`, child);
    };
    walk(abs, n);
    this.put(abs, undefined);
    this.events.push({ path: abs, perms: n.perms, recursive: true });
    return true;
  }

  setPerms(c: StoreCaller, abs: string, perms: Perms): void {
    const n = this.need(c, abs, ACCESS_WRITE);
    if (!(accessFor(c, n.perms) & ACCESS_OWNER)) throw new XsError('EACCES', `only the owner may change permissions of ${abs}`);
    const oldOwner = n.perms[0]!.id;
    const newOwner = perms[0]!.id;
    if (!c.privileged) {
      if (newOwner !== oldOwner) throw new XsError('EPERM', 'unprivileged domains may not give nodes away');
      if (perms.length > c.quotas.maxPerms) throw new XsError('ENOSPC', 'too many permission entries');
    }
    this.put(abs, new XsNode(n.value, perms, n.children, 0));
    if (newOwner !== oldOwner) {
      this.count(oldOwner, -1);
      this.count(newOwner, 1);
    }
    this.events.push({ path: abs, perms, recursive: false });
  }
}

function checkEntrySize(c: StoreCaller, value: Uint8Array, _children: ReadonlyMap<string, XsNode>): void {
  if (!c.privileged && value.length > c.quotas.maxEntrySize) throw new XsError('ENOSPC', `value of ${value.length} bytes is over the entry-size quota`);
}

/** Copies the path from `n` down to `segs`, replacing the last node; gens change only where names do. */
function putAt(n: XsNode, segs: string[], i: number, leaf: XsNode | undefined, gen: number): XsNode {
  const name = segs[i]!;
  const child = n.children.get(name);
  let next: XsNode | undefined;
  if (i === segs.length - 1) {
    next = leaf && new XsNode(leaf.value, leaf.perms, leaf.children, gen);
  } else {
    if (!child) throw new XsError('ENOENT', 'missing parent');
    next = putAt(child, segs, i + 1, leaf, gen);
  }
  const children = new Map(n.children);
  if (next) children.set(name, next);
  else children.delete(name);
  const namesChanged = (child === undefined) !== (next === undefined);
  return new XsNode(n.value, n.perms, children, namesChanged ? gen : n.gen);
}

/** The children list as DIRECTORY sends it; E2BIG if it does not fit one message. */
export function directoryPayload(n: XsNode): string {
  let s = '';
  for (const name of n.children.keys()) s += name + '\0';
  if (s.length > XENSTORE_PAYLOAD_MAX) throw new XsError('E2BIG', 'directory too large for one message');
  return s;
}

// --- Transactions -----------------------------------------------------------------------------

type Mutation =
  | { op: 'write'; c: StoreCaller; abs: string; value: Uint8Array }
  | { op: 'mkdir'; c: StoreCaller; abs: string }
  | { op: 'rm'; c: StoreCaller; abs: string }
  | { op: 'setPerms'; c: StoreCaller; abs: string; perms: Perms };

export class Transaction {
  readonly view: View;
  private readonly log: Mutation[] = [];

  constructor(
    readonly id: number,
    private readonly store: Store,
  ) {
    this.view = new View(store, store.root, true);
    store.liveTransactions.add(this);
  }

  /** The transaction ended (committed, aborted, or its connection reset): drop its snapshot. */
  release(): void {
    this.store.liveTransactions.delete(this);
  }

  /** Runs a mutation on the snapshot and remembers it for commit. */
  apply(m: Mutation): void {
    applyMutation(this.view, m);
    this.log.push(m);
    this.view.events.length = 0;
  }

  get size(): number {
    return this.view.accessed!.size;
  }

  /**
   * Commits: EAGAIN if any node this transaction looked at changed since its snapshot;
   * otherwise replays its mutations on a view of the current tree, which the caller installs.
   */
  commit(store: Store): View {
    for (const [path, gen] of this.view.accessed!) {
      const n = store.get(path);
      if ((n ? n.gen : ABSENT) !== gen) throw new XsError('EAGAIN', `${path} changed during the transaction`);
    }
    const v = new View(store, store.root, false);
    for (const m of this.log) applyMutation(v, m);
    return v;
  }
}

export function applyMutation(v: View, m: Mutation): void {
  switch (m.op) {
    case 'write':
      v.write(m.c, m.abs, m.value);
      break;
    case 'mkdir':
      v.mkdir(m.c, m.abs);
      break;
    case 'rm':
      v.rm(m.c, m.abs);
      break;
    case 'setPerms':
      v.setPerms(m.c, m.abs, m.perms);
      break;
  }
}
