/**
 * A blkif front end and back end that exchange requests over a ring page in a shared file, one
 * per process, kicking each other with doorbells. Used by the cross-process test and the ring
 * benchmark (`npm run bench -- ring`); run as `tsx blkif-peers.ts front|back <file> <count> ...`.
 *
 * Shared file layout (one page is the ring, as in Xen; the doorbells stand in for the event
 * channel's kick in each direction):
 *   0      .. 4096   blkif shared ring
 *   4096   .. 4160   doorbell the back end sleeps on (front -> back)
 *   4160   .. 4224   doorbell the front end sleeps on (back -> front)
 *
 * Every request's fields are derived from its sequence number, so the back end can check each
 * payload and answer OKAY or ERROR, and the front end checks each response's id and status.
 */
import { SharedMemory } from '../shared-memory.ts';
import { Doorbell } from '../doorbell.ts';
import { BackRing, FrontRing } from '../ring.ts';
import { blkifRequest, blkifResponse, blkifSegment, BLKIF_ENTRY_BYTES, BLKIF_OP, BLKIF_RSP } from '../io/blkif.ts';

export const RING_BYTES = 4096;
export const TO_BACK_BELL = 4096;
export const TO_FRONT_BELL = 4160;
export const FILE_BYTES = 8192;

export interface PeerOptions {
  file: string;
  count: number;
  /** Notification hold-off (req_event/rsp_event) on; off means a kick on every push. */
  holdOff: boolean;
  /** Doorbell spin before sleeping, in µs. */
  spinUs: number;
  /** Give up (and report) if the peer is silent this long. */
  idleTimeoutMs: number;
  /** Front end: publish after this many requests (1 = every request, as Linux blkfront does; 0 = fill the ring). */
  pushEvery?: number;
}

export interface PeerReport {
  role: 'front' | 'back';
  handled: number;
  errors: number;
  firstError?: string;
  pushes: number;
  kicksSent: number;
  kicksSuppressed: number;
  wakeSyscalls: number;
  sleeps: number;
  spinHits: number;
  elapsedMs: number;
  broken?: string;
}

export function createRingFile(file: string): void {
  const shm = SharedMemory.create(file, FILE_BYTES);
  FrontRing.init(shm.buffer, 0, RING_BYTES, BLKIF_ENTRY_BYTES);
  Doorbell.init(shm.buffer, TO_BACK_BELL);
  Doorbell.init(shm.buffer, TO_FRONT_BELL);
  shm.close();
}

/** The fields request number `i` carries. */
function expected(i: number) {
  const nrSegments = 1 + (i % 11);
  return {
    operation: i & 1 ? BLKIF_OP.WRITE : BLKIF_OP.READ,
    nrSegments,
    handle: 51712,
    sectorNumber: i * 8,
    gref: (i * 2654435761) >>> 0,
    firstSect: i & 7,
    lastSect: 7,
  };
}

export function runFront(o: PeerOptions): PeerReport {
  const shm = SharedMemory.open(o.file);
  const ring = FrontRing.attach(shm.buffer, 0, RING_BYTES, BLKIF_ENTRY_BYTES);
  ring.reqProdPvt = ring.rspCons = 0;
  const toBack = new Doorbell(shm.buffer, TO_BACK_BELL);
  const myBell = new Doorbell(shm.buffer, TO_FRONT_BELL);
  const dv = ring.view;
  const r: PeerReport = { role: 'front', handled: 0, errors: 0, pushes: 0, kicksSent: 0, kicksSuppressed: 0, wakeSyscalls: 0, sleeps: 0, spinHits: 0, elapsedMs: 0 };
  const t0 = performance.now();
  let sent = 0;
  let nextRsp = 0;
  const segOff = blkifRequest.offsetOf('seg', 0);
  while (nextRsp < o.count) {
    // Produce as many requests as fit.
    let produced = 0;
    const limit = o.pushEvery || ring.nrEnts;
    while (sent < o.count && !ring.full() && produced < limit) {
      const e = expected(sent);
      const off = ring.nextRequestOffset();
      blkifRequest.write(dv, off, {
        operation: e.operation,
        nrSegments: e.nrSegments,
        handle: e.handle,
        id: BigInt(sent),
        sectorNumber: e.sectorNumber,
      });
      blkifSegment.write(dv, off + segOff, { gref: e.gref, firstSect: e.firstSect, lastSect: e.lastSect });
      ring.produced();
      sent++;
      produced++;
    }
    if (produced) {
      r.pushes++;
      const notify = ring.pushRequests();
      if (notify || !o.holdOff) {
        toBack.ring();
        r.kicksSent++;
      } else r.kicksSuppressed++;
    }
    // Consume responses; sleep only when there is nothing left to send.
    let n = ring.unconsumedResponses();
    if (n === 0) {
      if (ring.broken) break;
      if (sent < o.count && !ring.full()) continue;
      const seen = myBell.seq;
      if (!ring.finalCheckForResponses()) {
        if (ring.broken) break;
        const s = myBell.wait(seen, o.idleTimeoutMs, o.spinUs);
        if (s === seen && ring.unconsumedResponses() === 0) {
          r.firstError ??= `front: no response for ${o.idleTimeoutMs} ms (waiting for #${nextRsp})`;
          r.errors++;
          break;
        }
        continue;
      }
      n = ring.unconsumedResponses();
    }
    for (let k = 0; k < n; k++) {
      const rsp = blkifResponse.read(dv, ring.responseOffset());
      ring.consumed();
      const e = expected(nextRsp);
      if (rsp.id !== BigInt(nextRsp) || rsp.status !== BLKIF_RSP.OKAY || rsp.operation !== e.operation) {
        r.errors++;
        r.firstError ??= `front: response #${nextRsp} was id=${rsp.id} op=${rsp.operation} status=${rsp.status}`;
      }
      nextRsp++;
      r.handled++;
    }
  }
  if (ring.broken) r.broken = ring.broken.message;
  r.elapsedMs = performance.now() - t0;
  Object.assign(r, pick(myBell));
  // The peer's wake-ups are counted on the bell we ring.
  r.wakeSyscalls = toBack.counters.wakeSyscalls;
  shm.close();
  return r;
}

export function runBack(o: PeerOptions): PeerReport {
  const shm = SharedMemory.open(o.file);
  const ring = BackRing.attach(shm.buffer, 0, RING_BYTES, BLKIF_ENTRY_BYTES);
  const toFront = new Doorbell(shm.buffer, TO_FRONT_BELL);
  const myBell = new Doorbell(shm.buffer, TO_BACK_BELL);
  const dv = ring.view;
  const copy = new Uint8Array(BLKIF_ENTRY_BYTES);
  const cv = new DataView(copy.buffer);
  const segOff = blkifRequest.offsetOf('seg', 0);
  const r: PeerReport = { role: 'back', handled: 0, errors: 0, pushes: 0, kicksSent: 0, kicksSuppressed: 0, wakeSyscalls: 0, sleeps: 0, spinHits: 0, elapsedMs: 0 };
  const t0 = performance.now();
  while (r.handled < o.count) {
    const seen = myBell.seq;
    let n = ring.unconsumedRequests();
    if (n === 0) {
      if (ring.broken) break;
      if (!ring.finalCheckForRequests()) {
        if (ring.broken) break;
        const s = myBell.wait(seen, o.idleTimeoutMs, o.spinUs);
        if (s === seen && ring.unconsumedRequests() === 0) {
          r.firstError ??= `back: no request for ${o.idleTimeoutMs} ms after ${r.handled}`;
          r.errors++;
          break;
        }
        continue;
      }
      n = ring.unconsumedRequests();
    }
    for (let k = 0; k < n; k++) {
      ring.copyRequest(copy);
      // Validate the private copy only.
      const req = blkifRequest.read(cv, 0);
      const seg = blkifSegment.read(cv, segOff);
      const i = Number(req.id);
      const e = expected(i);
      const ok =
        i === r.handled &&
        req.operation === e.operation &&
        req.nrSegments === e.nrSegments &&
        req.handle === e.handle &&
        req.sectorNumber === e.sectorNumber &&
        seg.gref === e.gref &&
        seg.firstSect === e.firstSect &&
        seg.lastSect === e.lastSect;
      if (!ok) {
        r.errors++;
        r.firstError ??= `back: request #${r.handled} carried ${JSON.stringify({ ...req, id: String(req.id) })}`;
      }
      blkifResponse.write(dv, ring.nextResponseOffset(), {
        id: req.id,
        operation: req.operation,
        status: ok ? BLKIF_RSP.OKAY : BLKIF_RSP.ERROR,
      });
      ring.produced();
      r.handled++;
    }
    r.pushes++;
    const notify = ring.pushResponses();
    if (notify || !o.holdOff) {
      toFront.ring();
      r.kicksSent++;
    } else r.kicksSuppressed++;
  }
  if (ring.broken) r.broken = ring.broken.message;
  r.elapsedMs = performance.now() - t0;
  Object.assign(r, pick(myBell));
  // The peer's wake-ups are counted on the bell we ring.
  r.wakeSyscalls = toFront.counters.wakeSyscalls;
  shm.close();
  return r;
}

function pick(bell: Doorbell) {
  return { sleeps: bell.counters.sleeps, spinHits: bell.counters.spinHits };
}

// Child-process entry: tsx blkif-peers.ts <front|back> <file> <count> <holdOff 0|1> <spinUs> <idleTimeoutMs>
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const [role, file, count, holdOff, spinUs, idle, pushEvery] = process.argv.slice(2);
  const o: PeerOptions = {
    file: file!,
    count: Number(count),
    holdOff: holdOff !== '0',
    spinUs: Number(spinUs ?? 50),
    idleTimeoutMs: Number(idle ?? 10_000),
    pushEvery: Number(pushEvery ?? 0),
  };
  // Wait for the parent's go: it sends a line on stdin once both peers are up.
  process.stdin.once('data', () => {
    const report = role === 'front' ? runFront(o) : runBack(o);
    process.stdout.write(JSON.stringify(report) + '\n', () => process.exit(0));
  });
  process.stdout.write('ready\n');
}
