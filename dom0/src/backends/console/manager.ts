/**
 * The console backend wired into dom0 (the xenconsoled role): for each guest the toolstack
 * attaches, map its console page (grant ref 0, GNTTAB_RESERVED_CONSOLE, seeded by the builder),
 * bind its console event channel, log everything it writes to `logs/console/guest-<name>.log`
 * from the first byte, and serve `xl console` on `<run>/dom0/console/<domid>.sock`: a client
 * gets the output since it attached (or, with `replay`, the whole log first) and its bytes go to
 * the guest's input. When the domain goes, clients are disconnected, which ends `xl console`.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { GNTMAP, GNTST, consoleSocketDir } from '@xenlab/xen-public';
import type { Dom0Host } from '../../toolstack/dom0-host.ts';
import { ConsoleBackend } from './console-backend.ts';

const GNTTAB_RESERVED_CONSOLE = 0;
/** A client that sends this byte first asks for the log so far before live output. */
export const CONSOLE_REPLAY = 0x12;

interface GuestConsole {
  backend: ConsoleBackend;
  handle: number;
  port: number;
  unbind: () => void;
  server: Server;
  clients: Set<Socket>;
  socketPath: string;
  logPath: string;
}

export class ConsoleManager {
  private readonly guests = new Map<number, GuestConsole>();

  constructor(private readonly h: Dom0Host) {}

  logPathFor(name: string): string {
    return join(this.h.layout.logDir, 'console', `guest-${name}.log`);
  }

  socketPathFor(domid: number): string {
    return join(consoleSocketDir(this.h.layout), `${domid}.sock`);
  }

  async attach(domid: number, name: string, port: number): Promise<{ socketPath: string; logPath: string }> {
    const hc = this.h.hc;
    const [m] = await hc.call('grant_table_op', 'map_grant_ref', [{ flags: GNTMAP.host_map, ref: GNTTAB_RESERVED_CONSOLE, dom: domid }]);
    if (!m || m.status !== GNTST.okay) throw new Error(`mapping the console page (grant 0) of d${domid} failed (GNTST ${m?.status})`);
    const undo: (() => Promise<unknown>)[] = [() => hc.call('grant_table_op', 'unmap_grant_ref', [{ handle: m.handle }])];
    try {
      const b = await hc.call('event_channel_op', 'bind_interdomain', { remote_dom: domid, remote_port: port });
      undo.push(() => hc.call('event_channel_op', 'close', { port: b.local_port }));
      const logPath = this.logPathFor(name);
      mkdirSync(join(this.h.layout.logDir, 'console'), { recursive: true });
      mkdirSync(consoleSocketDir(this.h.layout), { recursive: true });
      const clients = new Set<Socket>();
      const backend = new ConsoleBackend({
        buffer: this.h.mm.buffer,
        offset: m.dev_bus_addr,
        domid,
        logPath,
        notify: this.h.events.sender(b.local_port, b.notify),
        onOutput: (bytes) => {
          for (const c of clients) c.write(bytes);
        },
        log: (l) => this.h.log(l),
      });
      const socketPath = this.socketPathFor(domid);
      rmSync(socketPath, { force: true });
      const server = createServer((c) => {
        let first = true;
        c.on('data', (d: Buffer) => {
          if (first && d[0] === CONSOLE_REPLAY) {
            // Replay the log, then go live (output is synchronous with kicks, so nothing falls between).
            c.write(readFileSync(logPath));
            d = d.subarray(1);
          }
          first = false;
          if (!clients.has(c)) clients.add(c);
          if (d.length) backend.input(d);
        });
        c.on('error', () => clients.delete(c));
        c.on('close', () => clients.delete(c));
        // A client decides with its first byte whether it wants the log replayed; one that sends
        // nothing gets live output after a short grace (a replaying client must not get live
        // bytes before its replay, or it would see them twice).
        const grace = setTimeout(() => {
          if (!c.destroyed) clients.add(c);
        }, 100);
        c.once('data', () => clearTimeout(grace));
        c.once('close', () => clearTimeout(grace));
      });
      await new Promise<void>((res, rej) => {
        server.once('error', rej);
        server.listen(socketPath, () => res());
      });
      const unbind = this.h.events.on(b.local_port, () => backend.kick());
      this.guests.set(domid, { backend, handle: m.handle, port: b.local_port, unbind, server, clients, socketPath, logPath });
      backend.kick();
      return { socketPath, logPath };
    } catch (e) {
      for (const u of undo.reverse()) await u().catch(() => {});
      throw e;
    }
  }

  async detach(domid: number): Promise<void> {
    const g = this.guests.get(domid);
    if (!g) return;
    this.guests.delete(domid);
    g.backend.kick();
    g.unbind();
    for (const c of g.clients) c.end();
    await new Promise<void>((r) => g.server.close(() => r()));
    rmSync(g.socketPath, { force: true });
    g.backend.close();
    await this.h.hc.call('event_channel_op', 'close', { port: g.port }).catch(() => {});
    await this.h.hc.call('grant_table_op', 'unmap_grant_ref', [{ handle: g.handle }]).catch(() => {});
  }

  async stop(): Promise<void> {
    for (const d of [...this.guests.keys()]) await this.detach(d);
  }
}
