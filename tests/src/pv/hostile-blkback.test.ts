/**
 * A hostile frontend against the running blkback in dom0 (issue 6, "Bad input and faults"):
 * this test process is the guest — it owns a domain's connection, grants pages, binds an event
 * channel, does the xenbus handshake by hand and then writes garbage into the shared ring:
 * bogus grant refs, a page granted to someone else, segment counts over 11, sectors past the end,
 * unknown operations, and finally impossible ring indices. Every request is answered with an
 * error (the ring-index case stops that one device), the image is untouched, dom0 keeps running
 * and another guest's disk still works afterwards. Bounded waits, always torn down.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BLKIF_ENTRY_BYTES, BLKIF_OP, BLKIF_RSP, FrontRing, SharedMemory, blkifRequest, blkifResponse, blkifSegment } from '@xenlab/ring-buffers';
import { DOMID_SELF, DomId, Gfn, GrantFrame, HypercallClient, hostLayout } from '@xenlab/xen-public';
import { XenstoreClient } from '@xenlab/xenstore-client';

const run = promisify(execFile);

interface RawRequest { operation: number; id: bigint; sector?: number; nrSegments?: number; segs?: { gref: number; firstSect: number; lastSect: number }[] }

/** A frontend that writes whatever it is told straight into the shared ring, no checks. */
class RawFront {
  readonly ring: FrontRing;
  constructor(buffer: ArrayBuffer, offset: number) {
    this.ring = FrontRing.init(buffer, offset, 4096, BLKIF_ENTRY_BYTES);
  }
  put(r: RawRequest): void {
    const off = this.ring.nextRequestOffset();
    new Uint8Array(this.ring.view.buffer, this.ring.view.byteOffset + off, BLKIF_ENTRY_BYTES).fill(0);
    const segs = r.segs ?? [];
    blkifRequest.write(this.ring.view, off, { operation: r.operation, nrSegments: r.nrSegments ?? segs.length, handle: 51712, id: r.id, sectorNumber: r.sector ?? 0 });
    segs.slice(0, 11).forEach((s, i) => blkifSegment.write(this.ring.view, off + blkifRequest.offsetOf('seg', i), s));
    this.ring.produced();
  }
  push(): boolean {
    return this.ring.pushRequests();
  }
  responses(): { id: bigint; status: number }[] {
    const out = [];
    while (this.ring.unconsumedResponses() > 0) {
      out.push(blkifResponse.read(this.ring.view, this.ring.responseOffset()));
      this.ring.consumed();
    }
    return out;
  }
}
const root = fileURLToPath(new URL('../../../', import.meta.url));
const bin = (n: string) => join(root, 'node_modules/.bin', n);
let dir: string;
let env: NodeJS.ProcessEnv;
let hc: HypercallClient;
let xs: XenstoreClient;

const tool = async (name: string, ...args: string[]) => (await run(process.execPath, [bin(name), ...args], { env, timeout: 60_000 })).stdout;

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined | false> | T | undefined | false): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'xenlab-hostile-'));
  env = { ...process.env, XENLAB_RUN_DIR: dir, XENSTORED_PATH: join(dir, 'xenstored/socket') };
  await tool('xenlab', 'start', '--pcpus', '2', '--memory', '64', '--dom0-memory', '16');
  const L = hostLayout(dir);
  hc = await HypercallClient.connect(L.hypervisorSocket, readFileSync(L.dom0Token, 'utf8').trim());
  xs = await XenstoreClient.connect(L.xenstoredSocket);
}, 60_000);

afterAll(async () => {
  xs?.close();
  hc?.close();
  try {
    await tool('xenlab', 'stop');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

describe('blkback in a running dom0 against a hostile frontend', () => {
  it.each([
    ['per-request grants', false],
    ['persistent grants', true],
  ])('answers garbage with errors, stops a ring with impossible indices, and keeps serving others (%s)', async (_, persistent) => {
    const img = join(dir, 'victim.img');
    const content = new Uint8Array(64 * 512).map((_, i) => (i * 13 + 1) & 0xff);
    writeFileSync(img, content);
    truncateSync(img, 64 * 512);

    // The hostile "guest": this process owns domain d's connection.
    const { domain: d, token } = await hc.call('domctl', 'createdomain', { max_vcpus: 1 });
    await hc.call('domctl', 'max_mem', { domain: d, max_memkb: 64 });
    const guest = await HypercallClient.connect(hostLayout(dir).hypervisorSocket, token, { owner: true });
    const mm = SharedMemory.open(guest.info.machine_memory);
    try {
      const { extent_start: mfns } = await guest.call('memory_op', 'populate_physmap', { domid: DOMID_SELF, extent_start: [0, 1, 2, 3] });
      const gt = await guest.call('grant_table_op', 'setup_table', { dom: DOMID_SELF, nr_frames: 1 });
      const gf = new GrantFrame(mm.buffer, gt.frame_list[0]! * 4096);
      gf.grant(8, DomId(0), Gfn(1), false); // the ring
      gf.grant(9, DomId(0), Gfn(2), false); // a data page for dom0
      gf.grant(10, DomId(5), Gfn(3), false); // granted to somebody else
      const front = new RawFront(mm.buffer as ArrayBuffer, mfns[1]! * 4096);
      const { port } = await guest.call('event_channel_op', 'alloc_unbound', { dom: DOMID_SELF, remote_dom: 0 });

      // The toolstack's part, by hand: both directories in Initialising.
      const be = `/local/domain/0/backend/vbd/${d}/51712`;
      const fe = `/local/domain/${d}/device/vbd/51712`;
      await xs.transaction(async (t) => {
        for (const [k, v] of Object.entries({ params: img, mode: 'w', frontend: fe, 'frontend-id': String(d), online: '1', state: '1', type: 'file' })) await t.write(`${be}/${k}`, v);
      });
      for (const [k, v] of Object.entries({ backend: be, 'backend-id': '0', state: '1', 'virtual-device': '51712' })) await xs.write(`${fe}/${k}`, v);
      await until('backend InitWait', 10_000, async () => (await xs.tryRead(`${be}/state`)) === '2');
      expect(await xs.tryRead(`${be}/feature-persistent`)).toBe('1');
      for (const [k, v] of Object.entries({ 'ring-ref': '8', 'event-channel': String(port), protocol: 'x86_64-abi', 'feature-persistent': persistent ? '1' : '0', state: '3' })) {
        await xs.write(`${fe}/${k}`, v);
      }
      await until('backend Connected', 10_000, async () => (await xs.tryRead(`${be}/state`)) === '4');
      expect(await xs.tryRead(`${be}/sectors`)).toBe('64');

      const cases: RawRequest[] = [
        { operation: BLKIF_OP.READ, id: 1n, segs: [{ gref: 0xffffffff, firstSect: 0, lastSect: 7 }] },
        { operation: BLKIF_OP.READ, id: 2n, segs: [{ gref: 77, firstSect: 0, lastSect: 7 }] },
        { operation: BLKIF_OP.READ, id: 3n, segs: [{ gref: 10, firstSect: 0, lastSect: 7 }] },
        { operation: BLKIF_OP.WRITE, id: 4n, segs: [{ gref: 10, firstSect: 0, lastSect: 7 }] },
        { operation: BLKIF_OP.READ, id: 5n, nrSegments: 12, segs: Array.from({ length: 11 }, () => ({ gref: 9, firstSect: 0, lastSect: 0 })) },
        { operation: BLKIF_OP.READ, id: 6n, sector: 63, segs: [{ gref: 9, firstSect: 0, lastSect: 1 }] },
        { operation: BLKIF_OP.WRITE, id: 7n, sector: 2 ** 52, segs: [{ gref: 9, firstSect: 0, lastSect: 0 }] },
        { operation: BLKIF_OP.READ, id: 8n, segs: [{ gref: 9, firstSect: 7, lastSect: 200 }] },
        { operation: 99, id: 9n },
        { operation: BLKIF_OP.READ, id: 10n, sector: 8, segs: [{ gref: 9, firstSect: 0, lastSect: 7 }] }, // the one valid request
      ];
      for (const c of cases) front.put(c);
      front.push();
      await guest.call('event_channel_op', 'send', { port });
      const got: { id: bigint; status: number }[] = [];
      await until('all answered', 10_000, () => (got.push(...front.responses()), got.length >= cases.length));
      const status = new Map(got.map((r) => [r.id, r.status]));
      for (let id = 1n; id <= 9n; id++) expect(status.get(id), `request ${id}`).not.toBe(BLKIF_RSP.OKAY);
      expect(status.get(10n)).toBe(BLKIF_RSP.OKAY);
      const data = new Uint8Array(mm.buffer, mfns[2]! * 4096, 4096);
      expect(Buffer.compare(Buffer.from(data), Buffer.from(content.subarray(8 * 512, 16 * 512)))).toBe(0);

      if (persistent) {
        // blkback now holds gref 9 mapped: the guest cannot revoke it, and rewriting the entry to
        // another frame behind the hypervisor's back does not redirect blkback: the next read
        // still lands in the frame the hypervisor validated, never in GFN 3.
        expect(gf.endAccess(9)).toBe(false);
        gf.grant(9, DomId(0), Gfn(3), false);
        front.put({ operation: BLKIF_OP.READ, id: 11n, sector: 16, segs: [{ gref: 9, firstSect: 0, lastSect: 7 }] });
        front.push();
        await guest.call('event_channel_op', 'send', { port });
        const more: { id: bigint; status: number }[] = [];
        await until('persistent read answered', 10_000, () => (more.push(...front.responses()), more.length >= 1));
        expect(more).toMatchObject([{ id: 11n, status: BLKIF_RSP.OKAY }]);
        expect(Buffer.compare(Buffer.from(data), Buffer.from(content.subarray(16 * 512, 24 * 512)))).toBe(0);
        expect(new Uint8Array(mm.buffer, mfns[3]! * 4096, 4096).every((b) => b === 0)).toBe(true);
      }

      // Impossible indices: req_prod a thousand ahead of what the backend consumed.
      const hdr = new Uint32Array(mm.buffer, mfns[1]! * 4096, 4);
      Atomics.store(hdr, 0, hdr[0]! + 1000);
      await guest.call('event_channel_op', 'send', { port });
      await until('dom0 logs the broken ring', 10_000, () => readFileSync(join(dir, 'logs/dom0.log'), 'utf8').match(new RegExp(`blkback d${d}/51712: ring stopped`)) ?? undefined);
      expect(Buffer.compare(readFileSync(img), Buffer.from(content))).toBe(0);
    } finally {
      guest.close();
      mm.close();
      await xs.rm(`/local/domain/0/backend/vbd/${d}`).catch(() => {});
      await xs.rm(`/local/domain/${d}`).catch(() => {});
      await hc.call('domctl', 'destroydomain', { domain: d }).catch(() => {});
    }

    // dom0 and blkback carry on: another guest's disk works, and the hostile domain is fully gone.
    const scratch = join(dir, 'scratch.img');
    writeFileSync(scratch, '');
    truncateSync(scratch, 4 << 20);
    const out = await tool('xl', 'create', '-c', join(root, 'guests/diskex.cfg'), `kernel="${join(root, 'guests/diskex.bin')}"`, `disk=['${scratch},raw,xvda,rw']`);
    expect(out).toMatch(/VERIFY42 .* OK/);
    await until('hostile domain gone', 10_000, async () => !(await hc.call('sysctl', 'getdomaininfolist', { first_domain: 0, max_domains: 100 })).some((x) => x.domain === d));
  }, 60_000);
});
