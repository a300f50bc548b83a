/**
 * Debian's real Xen clients against our xenstored, unchanged: `xenstore-utils` (libxenstore 4.17,
 * reaching the daemon through XENSTORED_PATH) and `python3-pyxs`. When they are not installed
 * the tests say so and skip — except under CI (CI=true), where a missing client is a failure:
 * `.ci/run` installs them.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon } from './testing/harness.ts';

const run = promisify(execFile);
const TOOLS = ['read', 'write', 'ls', 'list', 'rm', 'exists', 'chmod', 'watch'].map((t) => `/usr/bin/xenstore-${t}`);
const PYTHON = '/usr/bin/python3';
const haveTools = TOOLS.every((t) => existsSync(t));
const havePyxs = existsSync(PYTHON) && existsSync('/usr/lib/python3/dist-packages/pyxs/client.py');
const inCI = process.env.CI === 'true' || process.env.CI === '1';

describe('real-client availability', () => {
  it('has xenstore-utils and python3-pyxs installed, or is not CI', () => {
    if (!haveTools || !havePyxs) {
      const msg = `real xenstore clients missing (xenstore-utils: ${haveTools}, python3-pyxs: ${havePyxs}); install with: apt-get install -y xenstore-utils python3-pyxs`;
      if (inCI) throw new Error(`${msg} (CI=true: refusing to skip)`);
      console.warn(`SKIPPING real-client tests: ${msg}`);
    }
  });
});

let d: Daemon;
let env: NodeJS.ProcessEnv;

async function xs(tool: string, ...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const r = await run(`/usr/bin/xenstore-${tool}`, args, { env, timeout: 10_000 });
    return { stdout: r.stdout, stderr: r.stderr, code: 0 };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; code?: number | string; killed?: boolean };
    if (err.killed || typeof err.code !== 'number') throw e;
    return { stdout: err.stdout ?? '', stderr: err.stderr ?? '', code: err.code };
  }
}

describe.skipIf(!haveTools)('Debian xenstore-utils against xenstored', () => {
  beforeAll(async () => {
    d = await startDaemon();
    env = { ...process.env, XENSTORED_PATH: d.path };
    // A stale run directory variable must not matter: XENSTORED_PATH wins.
    delete env.XENSTORED_RUNDIR;
  });
  afterAll(async () => {
    await d?.stop();
  });

  it('write, read (one key, several keys, -p), exists', async () => {
    expect((await xs('write', '/local/domain/3/name', 'guest3', '/vm/u/name', 'g')).code).toBe(0);
    expect((await xs('read', '/local/domain/3/name')).stdout).toBe('guest3\n');
    expect((await xs('read', '-p', '/local/domain/3/name', '/vm/u/name')).stdout).toBe('/local/domain/3/name: guest3\n/vm/u/name: g\n');
    expect((await xs('exists', '/vm/u')).code).toBe(0);
    expect((await xs('exists', '/vm/nope')).code).toBe(1);
    const missing = await xs('read', '/vm/nope');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("couldn't read path /vm/nope");
  });

  it('ls prints the tree with values, -f full paths, -p permissions; list prints children', async () => {
    await xs('write', '/ls/a', '1', '/ls/b/c', 'two words');
    expect((await xs('ls', '/ls')).stdout).toBe('a = "1"\nb = ""\n c = "two words"\n');
    expect((await xs('ls', '-f', '/ls')).stdout).toBe('/ls/a = "1"\n/ls/b = ""\n/ls/b/c = "two words"\n');
    await xs('chmod', '/ls/a', 'n0', 'r5', 'b7');
    const lines = (await xs('ls', '-p', '/ls')).stdout.split('\n');
    expect(lines[0]).toMatch(/^a = "1" +[. ]+ \(n0,r5,b7\)$/);
    expect(lines[1]).toMatch(/^b = "" .* \(n0\)$/);
    expect((await xs('list', '/ls')).stdout).toBe('a\nb\n');
    expect((await xs('list', '-p', '/ls')).stdout).toBe('/ls/a\n/ls/b\n');
    const root = (await xs('ls')).stdout;
    expect(root).toContain('local = ""\n domain = ""\n');
  });

  it('escapes non-printable values like Xen, and round-trips them through write', async () => {
    expect((await xs('write', '/esc', 'tab\\there\\x01\\\\')).code).toBe(0);
    const raw = d.xs.store.get('/esc')!.value;
    expect([...raw]).toEqual([...Buffer.from('tab\there\x01\\')]);
    expect((await xs('read', '/esc')).stdout).toBe('tab\\there\\001\\\\\n');
  });

  it('chmod (-r recursive), rm (-t tidy)', async () => {
    await xs('write', '/ch/x/y', 'v');
    expect((await xs('chmod', '-r', '/ch', 'n0', 'r9')).code).toBe(0);
    expect((await xs('ls', '-p', '/ch')).stdout).toMatch(/x = "" .*\(n0,r9\)\n y = "v" .*\(n0,r9\)\n/);
    expect((await xs('chmod', '/ch', 'q1')).code).toBe(1);
    await xs('write', '/tidy/p/q', 'v');
    expect((await xs('rm', '-t', '/tidy/p/q')).code).toBe(0);
    expect((await xs('exists', '/tidy')).code).toBe(1);
    expect((await xs('rm', '/ch')).code).toBe(0);
    expect((await xs('exists', '/ch/x/y')).code).toBe(1);
  });

  it('watch prints the watched path, then each change', async () => {
    const child = spawn('/usr/bin/xenstore-watch', ['-n', '3', '/wt'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const firstLine = new Promise<void>((resolve) =>
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('\n')) resolve();
      }),
    );
    const done = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const killer = setTimeout(() => child.kill(), 10_000);
    try {
      await firstLine;
      await xs('write', '/wt/a', '1');
      await xs('rm', '/wt');
      expect(await done).toBe(0);
      expect(out).toBe('/wt\n/wt/a\n/wt\n');
    } finally {
      clearTimeout(killer);
      child.kill();
    }
  });
});

describe.skipIf(!havePyxs)('python3-pyxs against xenstored', () => {
  beforeAll(async () => {
    d = await startDaemon();
    env = { ...process.env, XENSTORED_PATH: d.path };
  });
  afterAll(async () => {
    await d?.stop();
  });

  it('runs reads, writes, permissions, a transaction and a watch', async () => {
    const script = `
import os, sys
from pyxs import Client
from pyxs.exceptions import PyXSError
out = []
with Client(unix_socket_path=os.environ["XENSTORED_PATH"]) as c:
    c.mkdir(b"/py")
    c.write(b"/py/k", b"v1")
    out.append(c.read(b"/py/k").decode())
    out.append(",".join(x.decode() for x in c.list(b"/py")))
    c.set_perms(b"/py/k", [b"n0", b"r3"])
    out.append(",".join(x.decode() for x in c.get_perms(b"/py/k")))
    out.append(c.get_domain_path(4).decode())
    out.append(str(c.exists(b"/py/none")))
    try:
        c.read(b"/py/none")
    except PyXSError as e:
        out.append("err:" + str(e.args[0]))
    c.transaction()
    c.write(b"/py/t", b"in-tx")
    out.append(str(c.commit()))
    out.append(c.read(b"/py/t").decode())
    with c.monitor() as m:
        m.watch(b"/py", b"tok")
        ev = next(m.wait())
        out.append(ev[0].decode() + "|" + ev[1].decode())
        c.write(b"/py/w", b"x")
        ev = next(m.wait())
        out.append(ev[0].decode() + "|" + ev[1].decode())
    c.delete(b"/py")
    out.append(str(c.exists(b"/py")))
print("\\n".join(out))
`;
    const r = await run(PYTHON, ['-c', script], { env, timeout: 20_000 });
    expect(r.stdout.trim().split('\n')).toEqual([
      'v1',
      'k',
      'n0,r3',
      '/local/domain/4',
      'False',
      'err:2',
      'True',
      'in-tx',
      '/py|tok',
      '/py/w|tok',
      'False',
    ]);
  });
});
