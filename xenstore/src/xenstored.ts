/**
 * The xenstored core (the C daemon's `xenstored_core.c` + `xenstored_watch.c` +
 * `xenstored_domain.c`), free of sockets and signals so tests run it in one process: the store,
 * the connections, the watch registry, the introduced domains, and `process()`, which runs one
 * request through the dispatch table in `handlers.ts`. Protocol prose: ../README.md.
 */
import { XS_INTRODUCE_DOMAIN, XS_RELEASE_DOMAIN, XsType, xsTypeName, type XsMessage } from '@xenlab/xen-public';
import { Connection, watchKey, type ConnectionOptions, type ConnectionSink, type Watch } from './connection.ts';
import { XsError, toXenError } from './errors.ts';
import { WIRE_FUNCS } from './handlers.ts';
import { isUnder, relativeTo } from './paths.ts';
import { ACCESS_READ, accessFor, type Perms } from './perms.ts';
import { DEFAULT_QUOTAS, type Quotas } from './quota.ts';
import { Store, type ChangeEvent, type View } from './store.ts';

/** A domain introduced with XS_INTRODUCE. */
export interface DomainInfo {
  domid: number;
  /** As sent by the toolstack; Xen 4.17 ignores it and maps grant reference 1 instead. */
  gfn: bigint;
  port: number;
  conn: Connection | undefined;
  /** Set by `domainShutdown`; RESUME clears it so @releaseDomain can fire again. */
  shutdown: boolean;
  /** SET_TARGET: the domain this one serves (a device-model stub domain's guest). */
  target: number | undefined;
}

/**
 * Connects a newly introduced domain's ring. The hypervisor integration maps the guest's
 * xenstore page (grant reference 1) and binds the event channel; standalone, it may be absent
 * and an introduced domain then simply has no connection.
 */
export type RingAttacher = (xs: Xenstored, dom: DomainInfo) => Connection | undefined;

export interface XenstoredOptions {
  quotas?: Partial<Quotas>;
  log?: (line: string) => void;
  attachRing?: RingAttacher;
}

export interface XenstoredStats {
  requests: number;
  errors: number;
  droppedConnections: number;
  watchEvents: number;
  commits: number;
  conflicts: number;
}

/** Even a privileged client that stops reading may not make the daemon queue without bound. */
const PRIVILEGED_EVENT_BACKLOG = 1_000_000;

export class Xenstored {
  readonly store = new Store();
  readonly quotas: Quotas;
  readonly connections = new Set<Connection>();
  readonly domains = new Map<number, DomainInfo>();
  /** Watches by absolute path (special watches under their `@` name). */
  private readonly watchesByPath = new Map<string, Set<Watch>>();
  /** Permissions of the special nodes @introduceDomain and @releaseDomain. */
  readonly specialPerms = new Map<string, Perms>([
    [XS_INTRODUCE_DOMAIN, [{ id: 0, r: false, w: false }]],
    [XS_RELEASE_DOMAIN, [{ id: 0, r: false, w: false }]],
  ]);
  readonly stats: XenstoredStats = { requests: 0, errors: 0, droppedConnections: 0, watchEvents: 0, commits: 0, conflicts: 0 };
  readonly log: (line: string) => void;
  private readonly attachRing: RingAttacher | undefined;
  private readonly pendingAfter: Array<() => void> = [];

  constructor(opts: XenstoredOptions = {}) {
    this.quotas = { ...DEFAULT_QUOTAS, ...opts.quotas };
    this.log = opts.log ?? (() => {});
    this.attachRing = opts.attachRing;
  }

  connect(sink: ConnectionSink, opts: ConnectionOptions): Connection {
    const c = new Connection(sink, this.quotas, opts);
    c.onFlushed = () => this.pump(c);
    this.connections.add(c);
    return c;
  }

  /** Feeds transport bytes; a frame over the payload limit drops the connection, as Xen does. */
  receive(conn: Connection, chunk: Uint8Array): void {
    if (conn.closed) return;
    const msgs = conn.decoder.push(chunk);
    if (conn.decoder.error) {
      this.log(`${conn.label}: ${conn.decoder.error}; dropping the connection`);
      this.dropConnection(conn);
      return;
    }
    for (const m of msgs) conn.deferred.push(m);
    this.pump(conn);
  }

  /**
   * May this connection's next request run? An unprivileged client with `maxOutstanding`
   * replies and events it has not taken is not served until it reads them (its transport should
   * stop reading from it meanwhile).
   */
  canServe(conn: Connection): boolean {
    return !conn.closed && (conn.privileged || conn.outstanding() < this.quotas.maxOutstanding);
  }

  /** Runs the requests a connection has waiting, as far as its outstanding quota allows. */
  pump(conn: Connection): void {
    while (conn.deferred.length > 0 && this.canServe(conn)) this.process(conn, conn.deferred.shift()!);
  }

  /** Runs one request and queues its reply (then any events it caused). */
  process(conn: Connection, msg: XsMessage): void {
    this.stats.requests++;
    conn.stats.requests++;
    const entry = msg.type < WIRE_FUNCS.length ? WIRE_FUNCS[msg.type] : undefined;
    let view: View | undefined;
    try {
      if (!entry) throw new XsError('ENOSYS', `unknown operation ${msg.type}`);
      if (entry.priv && !conn.privileged) throw new XsError('EACCES', `${xsTypeName(msg.type)} is for privileged callers`);
      if (entry.writes && conn.readOnly) throw new XsError('EROFS', 'read-only connection');
      const reply = entry.fn(this, conn, msg);
      view = reply.view;
      conn.send(msg.type, msg.reqId, msg.txId, reply.payload);
    } catch (e) {
      const { name, unexpected } = toXenError(e);
      if (unexpected) this.log(`${conn.label}: ${xsTypeName(msg.type)} failed: ${(e as Error)?.stack ?? e}`);
      this.stats.errors++;
      conn.stats.errors++;
      view = undefined;
      this.pendingAfter.length = 0;
      conn.send(XsType.ERROR, msg.reqId, msg.txId, `${name}\0`);
    }
    if (view) this.fire(this.store.install(view));
    if (this.pendingAfter.length) {
      const after = this.pendingAfter.splice(0);
      for (const f of after) f();
    }
  }

  /** Runs `f` after the current request's reply has been queued (e.g. a new watch's first event). */
  afterReply(f: () => void): void {
    this.pendingAfter.push(f);
  }

  // --- Watches -----------------------------------------------------------------------------------

  addWatch(w: Watch): void {
    let s = this.watchesByPath.get(w.abs);
    if (!s) this.watchesByPath.set(w.abs, (s = new Set()));
    s.add(w);
    w.conn.watches.set(watchKey(w.abs, w.token), w);
  }

  removeWatch(w: Watch): void {
    const s = this.watchesByPath.get(w.abs);
    if (s) {
      s.delete(w);
      if (s.size === 0) this.watchesByPath.delete(w.abs);
    }
    w.conn.watches.delete(watchKey(w.abs, w.token));
  }

  /** Sends `path\0token\0` to a watch's connection, subject to the event quota. */
  sendEvent(w: Watch, eventPath: string): void {
    const c = w.conn;
    if (c.closed) return;
    if (c.outstanding() >= (c.privileged ? PRIVILEGED_EVENT_BACKLOG : this.quotas.maxQueuedEvents)) {
      c.stats.eventsDropped++;
      if (c.stats.eventsDropped === 1 || c.stats.eventsDropped % 1000 === 0) {
        this.log(`${c.label}: not reading its watch events; ${c.stats.eventsDropped} dropped`);
      }
      return;
    }
    c.stats.eventsSent++;
    this.stats.watchEvents++;
    c.send(XsType.WATCH_EVENT, 0, 0, `${eventPath}\0${w.token}\0`);
  }

  /** Fires the watches a set of node changes triggers, for connections that may read the node. */
  fire(events: ChangeEvent[]): void {
    if (events.length === 0 || this.watchesByPath.size === 0) return;
    for (const ev of events) {
      // Watches on the node and on each of its ancestors.
      let p = ev.path;
      for (;;) {
        const s = this.watchesByPath.get(p);
        if (s) for (const w of s) if (this.mayRead(w.conn, ev.perms)) this.sendEvent(w, w.relative ? relativeTo(ev.path, w.conn.domid) : ev.path);
        if (p === '/') break;
        const i = p.lastIndexOf('/');
        p = i === 0 ? '/' : p.slice(0, i);
      }
      // A removal also reaches watches set below the removed node, with their own path.
      if (ev.recursive) {
        for (const [abs, s] of this.watchesByPath) {
          if (abs === ev.path || abs[0] === '@' || !isUnder(abs, ev.path)) continue;
          for (const w of s) if (this.mayRead(w.conn, ev.perms)) this.sendEvent(w, w.path);
        }
      }
    }
  }

  private mayRead(c: Connection, perms: Perms): boolean {
    return (accessFor(c, perms) & ACCESS_READ) !== 0;
  }

  /** Fires @introduceDomain or @releaseDomain for privileged connections and those granted read. */
  fireSpecial(name: typeof XS_INTRODUCE_DOMAIN | typeof XS_RELEASE_DOMAIN): void {
    const s = this.watchesByPath.get(name);
    if (!s) return;
    const perms = this.specialPerms.get(name)!;
    for (const w of s) if (this.mayRead(w.conn, perms)) this.sendEvent(w, w.path);
  }

  // --- Connections and domains -----------------------------------------------------------------

  /** Forgets a connection's watches and transactions (RESET_WATCHES does this too). */
  resetConnection(c: Connection): void {
    for (const w of [...c.watches.values()]) this.removeWatch(w);
    for (const t of c.txns.values()) t.release();
    c.txns.clear();
  }

  dropConnection(c: Connection): void {
    if (!this.connections.has(c)) return;
    this.connections.delete(c);
    this.resetConnection(c);
    this.stats.droppedConnections++;
    const dom = c.socket ? undefined : this.domains.get(c.domid);
    if (dom?.conn === c) dom.conn = undefined;
    c.shutdown();
  }

  introduce(domid: number, gfn: bigint, port: number): void {
    const existing = this.domains.get(domid);
    if (existing) {
      if (existing.gfn === gfn && existing.port === port) return;
      throw new XsError('EEXIST', `domain ${domid} is already introduced`);
    }
    const dom: DomainInfo = { domid, gfn, port, conn: undefined, shutdown: false, target: undefined };
    this.domains.set(domid, dom);
    dom.conn = this.attachRing?.(this, dom);
    if (dom.conn) dom.conn.target = dom.target;
    this.log(`introduced domain ${domid} (gfn ${gfn}, port ${port})${dom.conn ? '' : ' without a ring'}`);
    this.fireSpecial(XS_INTRODUCE_DOMAIN);
  }

  release(domid: number): void {
    const dom = this.domains.get(domid);
    if (!dom) throw new XsError('ENOENT', `domain ${domid} is not introduced`);
    this.domains.delete(domid);
    if (dom.conn) this.dropConnection(dom.conn);
    this.log(`released domain ${domid}`);
    this.fireSpecial(XS_RELEASE_DOMAIN);
  }

  /** Called by the hypervisor integration when a domain shuts down, crashes or dies. */
  domainShutdown(domid: number): void {
    const dom = this.domains.get(domid);
    if (!dom || dom.shutdown) return;
    dom.shutdown = true;
    this.fireSpecial(XS_RELEASE_DOMAIN);
  }

  close(): void {
    for (const c of [...this.connections]) this.dropConnection(c);
  }
}
