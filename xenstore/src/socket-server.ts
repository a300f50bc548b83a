/**
 * xenstored's unix-socket transport: dom0's tools and processes (and Debian's `xenstore-*`,
 * through `XENSTORED_PATH`) connect here. Socket clients are privileged, as in the C daemon; the
 * read-only socket refuses changes with EROFS.
 */
import { lstatSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { ConnectionSink } from './connection.ts';
import type { Xenstored } from './xenstored.ts';

/** Stop reading a client whose replies pile up beyond this (it is not reading them). */
const HIGH_WATER = 1 << 20;

export class SocketServer {
  private readonly sockets = new Set<Socket>();

  private constructor(
    readonly xs: Xenstored,
    readonly path: string,
    private readonly server: Server,
  ) {}

  static listen(xs: Xenstored, path: string, opts: { readOnly?: boolean } = {}): Promise<SocketServer> {
    removeStaleSocket(path);
    const server = createServer();
    const s = new SocketServer(xs, path, server);
    server.on('connection', (sock) => s.accept(sock, opts.readOnly ?? false));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve(s);
      });
    });
  }

  private accept(sock: Socket, readOnly: boolean): void {
    this.sockets.add(sock);
    const sink: ConnectionSink = {
      write: (bytes) => {
        if (sock.destroyed) return;
        sock.write(bytes);
        if (sock.writableLength > HIGH_WATER && !sock.isPaused()) {
          sock.pause();
          sock.once('drain', () => sock.resume());
        }
      },
      close: () => sock.destroy(),
      outstanding: () => Math.floor(sock.writableLength / 64),
    };
    const c = this.xs.connect(sink, { domid: 0, socket: true, readOnly });
    sock.setNoDelay?.(true);
    sock.on('data', (chunk: Buffer) => this.xs.receive(c, chunk));
    const gone = (): void => {
      this.sockets.delete(sock);
      this.xs.dropConnection(c);
    };
    sock.on('close', gone);
    sock.on('error', () => sock.destroy());
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    removeStaleSocket(this.path);
  }
}

function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // Not there: fine.
  }
}
