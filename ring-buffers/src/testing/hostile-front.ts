/**
 * A hostile blkif front end, for tests: fills request slots with random bytes, publishes
 * plausible producer indices, checks that every garbage request still gets a response echoing
 * its 64-bit id bit for bit, and finally publishes an impossible req_prod. Run by
 * spawn-peers.ts in place of the honest front end.
 */
import { randomFillSync } from 'node:crypto';
import { SharedMemory } from '../shared-memory.ts';
import { Doorbell } from '../doorbell.ts';
import { BLKIF_ENTRY_BYTES, blkifRequest, blkifResponse, BLKIF_RSP } from '../io/blkif.ts';
import { RING_BYTES, TO_BACK_BELL, TO_FRONT_BELL, type PeerReport } from './blkif-peers.ts';

const ROUNDS = 200;

function runHostile(file: string, idleTimeoutMs: number): PeerReport & { idsEchoed: number; garbageAnswered: number } {
  const shm = SharedMemory.open(file);
  const dv = new DataView(shm.buffer, 0, RING_BYTES);
  const hdr = new Uint32Array(shm.buffer, 0, 4);
  const toBack = new Doorbell(shm.buffer, TO_BACK_BELL);
  const myBell = new Doorbell(shm.buffer, TO_FRONT_BELL);
  const nrEnts = 32;
  const r = { role: 'front' as const, handled: 0, errors: 0, pushes: 0, kicksSent: 0, kicksSuppressed: 0, wakeSyscalls: 0, sleeps: 0, spinHits: 0, elapsedMs: 0, idsEchoed: 0, garbageAnswered: 0, firstError: undefined as string | undefined };
  const t0 = performance.now();
  let prod = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const k = 1 + (round % nrEnts);
    const ids: bigint[] = [];
    for (let i = 0; i < k; i++) {
      const off = 64 + ((prod + i) & (nrEnts - 1)) * BLKIF_ENTRY_BYTES;
      randomFillSync(new Uint8Array(shm.buffer, off, BLKIF_ENTRY_BYTES));
      ids.push(blkifRequest.read(dv, off).id);
    }
    prod = (prod + k) >>> 0;
    Atomics.store(hdr, 3, prod); // rsp_event: kick me when the last of this batch is answered
    Atomics.store(hdr, 0, prod);
    toBack.ring();
    r.pushes++;
    // Wait for all k responses.
    const deadline = performance.now() + idleTimeoutMs;
    while (Atomics.load(hdr, 2) !== prod) {
      const seen = myBell.seq;
      if (Atomics.load(hdr, 2) === prod) break;
      if (performance.now() > deadline) {
        r.errors++;
        r.firstError ??= `hostile front: back end did not answer round ${round}`;
        break;
      }
      myBell.wait(seen, 100);
    }
    for (let i = 0; i < k; i++) {
      const off = 64 + ((prod - k + i) & (nrEnts - 1)) * BLKIF_ENTRY_BYTES;
      const rsp = blkifResponse.read(dv, off);
      if (rsp.id === ids[i]) r.idsEchoed++;
      else {
        r.errors++;
        r.firstError ??= `hostile front: response id ${rsp.id} != request id ${ids[i]}`;
      }
      if (rsp.status !== BLKIF_RSP.OKAY) r.garbageAnswered++;
      r.handled++;
    }
  }
  // Now an impossible producer index: 1000 requests outstanding on a 32-entry ring.
  Atomics.store(hdr, 0, (prod + 1000) >>> 0);
  toBack.ring();
  r.elapsedMs = performance.now() - t0;
  shm.close();
  return r;
}

const [, file, , , , idle] = process.argv.slice(2);
process.stdin.once('data', () => {
  const report = runHostile(file!, Number(idle ?? 10_000));
  process.stdout.write(JSON.stringify(report) + '\n', () => process.exit(0));
});
process.stdout.write('ready\n');
