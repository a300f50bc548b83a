/**
 * One half of a two-process PV block test: `front` runs the shim's blkfront (guest grant table,
 * requests with up to 11 segments, hold-off), `back` runs dom0's blkback on a disk image. They
 * share one MAP_SHARED file and kick each other with doorbells (the event channel's stand-in).
 * As in pv-guest-harness.ts, the hypervisor's grant copy is the in-memory TEST DOUBLE, here
 * reading the guest's grant frame and memory through the back process's own mapping.
 *
 *   tsx pv-blk-peer.ts back  <file> <image>
 *   tsx pv-blk-peer.ts front <file> <sectors> <queueDepth> <randomOps>
 *
 * File layout (pages): 0 grant frame, 1 blkif ring, 2 doorbells + stop word, 3.. guest memory.
 * Each prints one JSON line when done.
 */
import { pathToFileURL } from 'node:url';
import { BackRing, BLKIF_ENTRY_BYTES, BLKIF_RSP, Doorbell, FrontRing, SharedMemory } from '@xenlab/ring-buffers';
import { DomId, Gfn, GrantFrame } from '@xenlab/xen-public';
import { BlkbackDevice, DiskImage } from '../../dom0/src/backends/blkback/index.ts';
import { InMemoryGrantCopy } from '../../dom0/src/backends/blkback/testing/in-memory-grant-table.ts';
import { Blkfront, type BlkfrontSegment } from '../../domU-pv-kernel-shim/src/blkfront/blkfront.ts';
import { GuestGrantTable } from '../../domU-pv-kernel-shim/src/grant-table.ts';

export const PAGE = 4096;
export const GUEST_PAGES = 256;
export const FILE_BYTES = (3 + GUEST_PAGES) * PAGE;
export const RING_OFFSET = PAGE;
export const TO_BACK = 2 * PAGE;
export const TO_FRONT = 2 * PAGE + 64;
export const STOP_WORD = 2 * PAGE + 128;
export const GUEST = DomId(5);
export const DOM0 = DomId(0);
const guestPage = (gfn: number) => (3 + gfn) * PAGE;
/** Requests the front end issues before measuring. */
export const WARMUP = 2000;

/** The image's byte at offset i (the parent writes the image with it). */
export const patternByte = (i: number) => (i * 7 + Math.floor(i / 512) * 3) & 0xff;

export function createPeerFile(path: string): void {
  const shm = SharedMemory.create(path, FILE_BYTES);
  FrontRing.init(shm.buffer, RING_OFFSET, PAGE, BLKIF_ENTRY_BYTES);
  Doorbell.init(shm.buffer, TO_BACK);
  Doorbell.init(shm.buffer, TO_FRONT);
  shm.close();
}

async function back(file: string, image: string): Promise<void> {
  const shm = SharedMemory.open(file);
  const disk = DiskImage.open(image);
  const pages = (gfn: number) => (Number.isInteger(gfn) && gfn >= 0 && gfn < GUEST_PAGES ? new Uint8Array(shm.buffer, guestPage(gfn), PAGE) : undefined);
  const grants = new InMemoryGrantCopy(DOM0, new Map([[GUEST, { domid: GUEST, frames: [new GrantFrame(shm.buffer, 0)], page: pages }]]));
  (grants as { log: unknown }).log = { push() {} };
  const toFront = new Doorbell(shm.buffer, TO_FRONT);
  const bell = new Doorbell(shm.buffer, TO_BACK);
  const stop = new Int32Array(shm.buffer, STOP_WORD, 1);
  const dev = new BlkbackDevice({ ring: BackRing.attach(shm.buffer, RING_OFFSET, PAGE, BLKIF_ENTRY_BYTES), frontendDomid: GUEST, disk, grants, notify: () => toFront.ring() });
  process.stdout.write('ready\n');
  const deadline = performance.now() + 120_000;
  while (Atomics.load(stop, 0) === 0 && performance.now() < deadline) {
    const seen = bell.seq;
    await dev.kick();
    bell.wait(seen, 1000, 50);
  }
  process.stdout.write(JSON.stringify({ role: 'back', counters: dev.counters, stopped: dev.stopped, bell: bell.counters }) + '\n');
  shm.close();
}

async function front(file: string, sectors: number, depth: number, randomOps: number): Promise<void> {
  const shm = SharedMemory.open(file);
  const gnttab = new GuestGrantTable([new GrantFrame(shm.buffer, 0)]);
  const ring = FrontRing.attach(shm.buffer, RING_OFFSET, PAGE, BLKIF_ENTRY_BYTES);
  const toBack = new Doorbell(shm.buffer, TO_BACK);
  const bell = new Doorbell(shm.buffer, TO_FRONT);
  const blk = new Blkfront({
    ring, backendDomid: DOM0, grants: gnttab, notify: () => toBack.ring(), handle: 51712,
    info: { sectors, sectorSize: 512, readOnly: false, cdrom: false, removable: false, flush: true, discard: true },
  });
  const mem = new Uint8Array(shm.buffer, guestPage(0), GUEST_PAGES * PAGE);
  const errors: string[] = [];

  /** Runs `total` reads of `pagesPer` pages each, `depth` in flight, each slot with its own guest pages. */
  async function run(total: number, pagesPer: number, lbaOf: (k: number) => number): Promise<number> {
    let issued = 0;
    let done = 0;
    const t0 = performance.now();
    const slotPages = (slot: number) => 16 + slot * pagesPer;
    const issue = (slot: number) => {
      const k = issued++;
      const lba = lbaOf(k);
      const segs: BlkfrontSegment[] = Array.from({ length: pagesPer }, (_, p) => ({ gfn: Gfn(slotPages(slot) + p), firstSect: 0, lastSect: 7 }));
      void blk.queueRw('read', lba, segs).then((st) => {
        done++;
        if (st !== BLKIF_RSP.OKAY) errors.push(`read of LBA ${lba}: status ${st}`);
        else {
          const got = mem.subarray(slotPages(slot) * PAGE, (slotPages(slot) + pagesPer) * PAGE);
          for (let i = 0; i < got.length; i += 509) {
            if (got[i] !== patternByte(lba * 512 + i)) {
              errors.push(`LBA ${lba} byte ${i}: ${got[i]} != ${patternByte(lba * 512 + i)}`);
              break;
            }
          }
        }
        if (issued < total) issue(slot);
      });
    };
    for (let s = 0; s < Math.min(depth, total); s++) issue(s);
    blk.push();
    const deadline = performance.now() + 60_000;
    while (done < total && performance.now() < deadline) {
      const seen = bell.seq;
      if (blk.handleResponses() > 0) {
        await null; // let the completions run (they re-issue), then publish the batch
        await null;
        blk.push();
        continue;
      }
      if (done >= total) break;
      bell.wait(seen, 1000, 50);
    }
    if (done < total) errors.push(`only ${done} of ${total} reads completed`);
    return (performance.now() - t0) / 1000;
  }

  const seqPages = 8; // 32 KiB requests
  const seqCount = Math.floor(sectors / (seqPages * 8));
  await run(WARMUP, seqPages, (k) => (k * seqPages * 8) % (sectors - seqPages * 8)); // JIT warm-up, not measured
  const seqSecs = await run(seqCount, seqPages, (k) => k * seqPages * 8);
  let seed = 12345;
  const rndSecs = await run(randomOps, 1, () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return (seed % (sectors / 8)) * 8;
  });
  const stop = new Int32Array(shm.buffer, STOP_WORD, 1);
  Atomics.store(stop, 0, 1);
  toBack.ring();
  process.stdout.write(JSON.stringify({
    role: 'front',
    errors: errors.slice(0, 5),
    seqMiBps: (seqCount * seqPages * PAGE) / 2 ** 20 / seqSecs,
    randIops: randomOps / rndSecs,
    counters: blk.counters,
    grants: gnttab.counters,
    bell: bell.counters,
  }) + '\n');
  shm.close();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [role, file, a, b, c] = process.argv.slice(2);
  if (role === 'back') await back(file!, a!);
  else await front(file!, Number(a), Number(b), Number(c));
}
