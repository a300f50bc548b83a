/**
 * Baseline peers for `npm run bench -- xenstore` (tools/src/bench/xenstore.ts), each a separate
 * process so a baseline pays the same process hops as xenstored does:
 *
 *   socket-echo <path> <replyBytes>   a unix-socket server answering each xs_wire frame with a
 *                                     prepared frame of `replyBytes` bytes: the plain socket
 *                                     ping-pong with the daemon's message sizes, no store
 *   doorbell-echo <ringFile>          waits on the guest's doorbell the way xenstored does
 *                                     (event loop, futex on the libuv pool) and rings back: the
 *                                     notification round trip without the ring protocol
 *
 * Each prints "ready" on stdout once serving, and exits on SIGTERM.
 */
import { createServer } from 'node:net';
import { unlinkSync } from 'node:fs';
import { GuestRingFile } from '@xenlab/xenstore-client';

const [mode, arg1, arg2] = process.argv.slice(2);

if (mode === 'socket-echo') {
  const path = arg1!;
  // A well-formed frame of the daemon's reply size: header type READ, payload of zeroes.
  const reply = Buffer.alloc(Number(arg2));
  reply.writeUInt32LE(2, 0);
  reply.writeUInt32LE(reply.length - 16, 12);
  const server = createServer((sock) => {
    sock.setNoDelay(true);
    let pending: Buffer = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      let n = 0;
      let at = 0;
      while (pending.length - at >= 16) {
        const len = pending.readUInt32LE(at + 12);
        if (pending.length - at < 16 + len) break;
        at += 16 + len;
        n++;
      }
      pending = pending.subarray(at);
      if (n === 1) sock.write(reply);
      else if (n > 1) sock.write(Buffer.concat(Array.from({ length: n }, () => reply)));
    });
    sock.on('error', () => {});
  });
  server.listen(path, () => process.stdout.write('ready\n'));
  process.on('SIGTERM', () => {
    server.close();
    try {
      unlinkSync(path);
    } catch {}
    process.exit(0);
  });
} else if (mode === 'doorbell-echo') {
  const file = GuestRingFile.open(arg1!);
  const { toServer, toGuest } = file.doorbells;
  let running = true;
  void (async () => {
    let seen = toServer.seq;
    process.stdout.write('ready\n');
    while (running) {
      const s = await toServer.waitAsync(seen, 100);
      if (s !== seen) {
        seen = s;
        toGuest.ring();
      }
    }
  })();
  process.on('SIGTERM', () => {
    running = false;
    setTimeout(() => process.exit(0), 150);
  });
} else {
  process.stderr.write('usage: peers.ts socket-echo <path> <replyBytes> | doorbell-echo <ringFile>\n');
  process.exit(2);
}
