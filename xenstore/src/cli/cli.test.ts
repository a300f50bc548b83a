/**
 * Our xenstore-* tools, run through their npx shims (xenstore/bin), against a daemon: each
 * scenario checks the expected output and, when Debian's xenstore-utils are installed (always
 * under CI), that Debian's tool prints exactly the same and exits the same way.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sanitiseValue, unsanitiseValue } from './xenstore-client.ts';
import { startDaemon, type Daemon } from '../testing/harness.ts';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin');
const haveDebian = existsSync('/usr/bin/xenstore-read');
const inCI = process.env.CI === 'true' || process.env.CI === '1';

interface Result {
  stdout: string;
  stderr: string;
  code: number;
}

let d: Daemon;

function exec(file: string, args: string[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { env: { ...process.env, XENSTORED_PATH: d.path }, timeout: 20_000 }, (err, stdout, stderr) => {
      if (err && (err as { killed?: boolean }).killed) return reject(new Error(`${file} timed out`));
      const code = err ? Number((err as { code?: number }).code ?? 1) : 0;
      // The usage line names the program as invoked; compare it by name.
      resolve({ stdout, stderr: stderr.replace(/Usage: \S*\/(xenstore-\w+)/g, 'Usage: $1'), code });
    });
  });
}

const ours = (tool: string, args: string[]): Promise<Result> => exec(process.execPath, [join(BIN, `xenstore-${tool}.mjs`), ...args]);
const debian = (tool: string, args: string[]): Promise<Result> => exec(`/usr/bin/xenstore-${tool}`, args);

/** Runs ours, then (if available) Debian's on a state reset to the same starting point. */
async function same(tool: string, args: string[], expected: Partial<Result>, setup?: () => Promise<void>): Promise<void> {
  await setup?.();
  const a = await ours(tool, args);
  expect(a, `xenstore-${tool} ${args.join(' ')}`).toMatchObject(expected);
  if (haveDebian) {
    await setup?.();
    const b = await debian(tool, args);
    expect(a, `ours vs Debian: xenstore-${tool} ${args.join(' ')}`).toEqual(b);
  }
}

describe('value escaping', () => {
  it('matches Xen sanitise/unsanitise', () => {
    expect(sanitiseValue(Buffer.from('a\tb\n\r\\\x01\x7f\xff ~', 'latin1'))).toBe('a\\tb\\n\\r\\\\\\001\\x7f\\xff ~');
    expect([...unsanitiseValue('a\\tb\\x41\\101\\\\\\q')]).toEqual([...Buffer.from('a\tbAA\\q')]);
  });
});

describe('xenstore-* tools', () => {
  beforeAll(async () => {
    if (!haveDebian && inCI) throw new Error('CI=true but Debian xenstore-utils are missing: apt-get install -y xenstore-utils');
    d = await startDaemon();
    const c = d.xs;
    void c;
  });
  afterAll(async () => {
    await d?.stop();
  });

  const reset = async (): Promise<void> => {
    await exec(process.execPath, [join(BIN, 'xenstore-rm.mjs'), '/cli']);
    await ours('write', ['/cli/a', 'one', '/cli/b/c', 'two words', '/cli/bin', 'x\\001\\x7f']);
  };

  it('write, read, exists, list', async () => {
    await reset();
    await same('read', ['/cli/a'], { stdout: 'one\n', code: 0 });
    await same('read', ['-p', '/cli/a', '/cli/b/c', '/cli/bin'], { stdout: '/cli/a: one\n/cli/b/c: two words\n/cli/bin: x\\001\\x7f\n' });
    await same('read', ['/cli/a', '/cli/nope'], { stdout: 'one\n', stderr: "xenstore-read: couldn't read path /cli/nope\n", code: 1 });
    await same('read', [], { stderr: 'xenstore-read: Usage: xenstore-read [-h] [-p] [-s] [-R] key [...]\n', code: 1 });
    await same('exists', ['/cli/b'], { code: 0 });
    await same('exists', ['/cli/b', '/cli/zz'], { code: 1 });
    await same('list', ['-p', '/cli'], { stdout: '/cli/a\n/cli/b\n/cli/bin\n' });
    await same('list', ['/cli/zz'], { stderr: 'xenstore-list: could not list path /cli/zz\n', code: 1 });
    await same('write', ['/cli/odd'], { code: 1 });
  });

  it('ls with values, -f and -p, and errors', async () => {
    await reset();
    await same('ls', ['/cli'], { stdout: 'a = "one"\nb = ""\n c = "two words"\nbin = "x\\001\\x7f"\n' });
    await same('ls', ['-f', '/cli'], { code: 0 });
    await ours('chmod', ['/cli/a', 'n0', 'r5', 'b7']);
    await same('ls', ['-p', '/cli'], { code: 0 });
    await same('ls', ['/cli/zz'], { stderr: 'xenstore-ls: xs_directory (/cli/zz): No such file or directory\n', code: 1 });
    await ours('write', ['/cli/long', 'v'.repeat(200)]);
    await same('ls', ['/cli'], { code: 0 });
  });

  it('chmod -r / -u and bad modes, rm -t', async () => {
    await same('chmod', ['-r', '/cli/b', 'n0', 'r4'], { code: 0 }, reset);
    expect(d.xs.store.get('/cli/b/c')!.perms).toEqual([
      { id: 0, r: false, w: false },
      { id: 4, r: true, w: false },
    ]);
    await same('chmod', ['-u', '/cli/b/c', 'n0', 'r3'], { code: 0 }, reset);
    expect(d.xs.store.get('/cli')!.perms[1]).toEqual({ id: 3, r: true, w: false });
    await same('chmod', ['/cli/a', 'x1'], { stderr: "xenstore-chmod: Invalid permission specification: 'x'\n", code: 1 });
    await same('rm', ['-t', '/cli/b/c'], { code: 0 }, reset);
    expect(d.xs.store.get('/cli/b')).toBeUndefined();
    await same('rm', ['/cli/zz/q'], { stderr: 'xenstore-rm: could not remove path /cli/zz/q\n', code: 1 });
  });

  it('watch -n prints the path of each event', async () => {
    await reset();
    const p = ours('watch', ['-n', '1', '/cli/a']);
    expect(await p).toEqual({ stdout: '/cli/a\n', stderr: '', code: 0 });
  });
});
