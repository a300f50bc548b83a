/**
 * The ring lab against Xen's own ring.h: a C front end built with libxen-dev's headers fills a
 * page; `xenlab-ring dump` reads it and `xenlab-ring echo` answers it; the C front end then
 * consumes the responses with RING_GET_RESPONSE and checks them and the indices.
 */
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const C_SRC = fileURLToPath(new URL('./c/blkif-front.c', import.meta.url));
const HAVE_XEN_HEADERS = existsSync('/usr/include/xen/io/ring.h');
if (!HAVE_XEN_HEADERS) {
  const msg = "Xen's public headers are missing (/usr/include/xen/io/ring.h): install them with `apt-get install libxen-dev`";
  if (process.env.CI) throw new Error(`ring-lab interop test: ${msg}`);
  console.warn(`\n*** SKIPPING the C interop test of the ring lab: ${msg} ***\n`);
}

function ringCli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'tools/src/ring-lab/main.ts'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'xenlab-ringlab-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!HAVE_XEN_HEADERS)("interoperates with Xen's ring.h and blkif.h", () => {
  it('dumps, answers and leaves req_event as a Xen back end would', () => {
    const exe = join(dir, 'blkif-front');
    execFileSync('cc', ['-O1', '-Wall', '-Werror', '-o', exe, C_SRC]);
    const page = join(dir, 'ring.page');
    for (const n of [1, 7, 32]) {
      const init = JSON.parse(execFileSync(exe, ['init', page, String(n)], { encoding: 'utf8' }));
      expect(init).toMatchObject({ pushed: n, notify: 1, nr_ents: 32, sizeof_request: 112 });

      const d = ringCli('dump', '--proto', 'blkif', '--file', page);
      expect(d.status, d.stderr).toBe(0);
      const dumped = JSON.parse(d.stdout);
      expect(dumped.header).toEqual({ reqProd: n, reqEvent: 1, rspProd: 0, rspEvent: 1 });
      expect(dumped.requests).toHaveLength(n);
      const last = dumped.requests[n - 1];
      expect(last).toMatchObject({ index: n - 1, id: String(1000 + n - 1), sectorNumber: 8 * (n - 1), handle: 51712 });
      expect(last.seg).toHaveLength(1 + ((n - 1) % 11));
      expect(last.seg[0]).toEqual({ gref: 100, firstSect: 0, lastSect: 7 });

      const e = ringCli('echo', '--proto', 'blkif', '--file', page);
      expect(e.status, e.stderr).toBe(0);
      expect(JSON.parse(e.stdout)).toMatchObject({ answered: n, notify: true, header: { reqEvent: n + 1, rspProd: n } });

      const check = JSON.parse(execFileSync(exe, ['check', page, String(n)], { encoding: 'utf8' }));
      expect(check).toEqual({ responses: n, bad: 0, more: 0, req_prod: n, req_event: n + 1, rsp_prod: n, rsp_event: n + 1 });
    }
  });
});

describe('hostile pages', () => {
  it('dump reports impossible indices instead of printing garbage; echo refuses with a clear error', () => {
    const page = join(dir, 'hostile.page');
    const buf = Buffer.alloc(4096, 0xa5);
    buf.writeUInt32LE(1_000_000, 0); // req_prod
    buf.writeUInt32LE(0, 8); // rsp_prod
    writeFileSync(page, buf);
    const d = ringCli('dump', '--proto', 'blkif', '--file', page);
    expect(d.status).toBe(0);
    const dumped = JSON.parse(d.stdout);
    expect(dumped.requests).toBeUndefined();
    expect(dumped.errors[0]).toMatch(/more than the ring's 32 entries/);
    const e = ringCli('echo', '--proto', 'blkif', '--file', page);
    expect(e.status).toBe(1);
    expect(e.stderr).toMatch(/the front end broke the ring protocol/);
  });

  it('dumps console and xenstore pages, bounding hostile byte-ring indices', () => {
    const page = join(dir, 'cons.page');
    const buf = Buffer.alloc(4096);
    buf.write('hello', 1024 + 10, 'latin1');
    buf.writeUInt32LE(10, 3080); // out_cons
    buf.writeUInt32LE(15, 3084); // out_prod
    buf.writeUInt32LE(5000, 3076); // in_prod: impossible
    writeFileSync(page, buf);
    const c = JSON.parse(ringCli('dump', '--proto', 'console', '--file', page).stdout);
    expect(c.out).toMatchObject({ pending: 5, text: 'hello' });
    expect(c.in.error).toMatch(/more than the 1024-byte ring/);

    const xs = Buffer.alloc(4096);
    const msg = Buffer.concat([Buffer.from(new Uint32Array([2, 7, 0, 6]).buffer), Buffer.from('/tool\0')]);
    msg.copy(xs, 0);
    xs.writeUInt32LE(msg.length, 2052); // req_prod
    writeFileSync(page, xs);
    const x = JSON.parse(ringCli('dump', '--proto', 'xenstore', '--file', page).stdout);
    expect(x.req.messages[0]).toEqual({ type: 2, reqId: 7, txId: 0, len: 6, payload: ['/tool', ''] });
  });

  it('explains bad arguments', () => {
    const r = ringCli('dump', '--proto', 'scsi', '--file', '/nonexistent');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/Allowed choices are blkif, netif-tx/);
    const m = ringCli('dump', '--proto', 'blkif', '--file', join(dir, 'missing'));
    expect(m.status).toBe(1);
    expect(m.stderr).toMatch(/cannot map .*missing/);
  });
});
