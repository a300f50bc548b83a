/**
 * `xl console <domain>`: attaches to the domain's console socket in dom0 (the console backend,
 * dom0/src/backends/console/manager.ts). Output goes to stdout, stdin to the guest. On a terminal
 * stdin is put in raw mode and Ctrl-] detaches; without one (scripts, CI) it just relays.
 * Returns when the domain goes away (dom0 closes the socket).
 */
import { connect } from 'node:net';

export const CTRL_RIGHT_BRACKET = 0x1d;
/** Sent first to ask for the console log so far (dom0's CONSOLE_REPLAY). */
const REPLAY = 0x12;

export async function attachConsole(socketPath: string, opts: { replay?: boolean; onConnected?: () => Promise<void> } = {}): Promise<'detached' | 'closed'> {
  const sock = connect(socketPath);
  await new Promise<void>((res, rej) => {
    sock.once('connect', () => res());
    sock.once('error', rej);
  });
  if (opts.replay) sock.write(Uint8Array.of(REPLAY));
  const stdin = process.stdin;
  const tty = stdin.isTTY === true;
  if (tty) stdin.setRawMode(true);
  return new Promise((resolve) => {
    let done = false;
    const finish = (how: 'detached' | 'closed') => {
      if (done) return;
      done = true;
      stdin.off('data', onIn);
      if (tty) stdin.setRawMode(false);
      stdin.pause();
      sock.destroy();
      resolve(how);
    };
    const onIn = (b: Buffer) => {
      if (tty) {
        const i = b.indexOf(CTRL_RIGHT_BRACKET);
        if (i >= 0) {
          if (i > 0) sock.write(b.subarray(0, i));
          return finish('detached');
        }
      }
      sock.write(b);
    };
    sock.on('data', (b) => process.stdout.write(b));
    sock.on('close', () => finish('closed'));
    sock.on('error', () => finish('closed'));
    stdin.on('data', onIn);
    stdin.on('error', () => {});
    if (opts.onConnected) opts.onConnected().catch((e) => {
      process.stderr.write(`${(e as Error).message}\n`);
      finish('closed');
    });
  });
}
