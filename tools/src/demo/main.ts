/**
 * `npm run demo`: until a whole host boots, the demo shows the foundation every xenlab I/O path
 * stands on: two processes, one shared page, Xen's blkif ring and a doorbell in each direction.
 *
 *   1. a front end fills a ring page and publishes requests; the ring lab dumps the page;
 *   2. a back end process answers them, and the front end process checks each response;
 *   3. then 200,000 requests cross between two processes, with notification hold-off on and off.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  blkifRequest,
  blkifSegment,
  BLKIF_ENTRY_BYTES,
  BLKIF_OP,
  Doorbell,
  FrontRing,
  SharedMemory,
} from '@xenlab/ring-buffers';
import { runPeerPair } from '@xenlab/ring-buffers/testing';
import { dump, echoBlkif, toJson } from '../ring-lab/ring-lab.ts';

const say = (s = '') => console.log(s);

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'xenlab-demo-'));
  try {
    say('xenlab demo: a blkif shared ring between two processes (the foundation of every PV device)\n');
    const file = join(dir, 'ring.page');
    const shm = SharedMemory.create(file, 4096);
    const front = FrontRing.init(shm.buffer, 0, 4096, BLKIF_ENTRY_BYTES);
    say(`1. The front end initialises a ring page in ${file}:`);
    say(`   ${front.nrEnts} slots of ${BLKIF_ENTRY_BYTES} bytes after a 64-byte header; req_event = rsp_event = 1.`);
    for (let i = 0; i < 3; i++) {
      const off = front.nextRequestOffset();
      blkifRequest.write(front.view, off, { operation: BLKIF_OP.READ, nrSegments: 1, handle: 51712, id: BigInt(100 + i), sectorNumber: i * 8 });
      blkifSegment.write(front.view, off + blkifRequest.offsetOf('seg', 0), { gref: 8 + i, firstSect: 0, lastSect: 7 });
      front.produced();
    }
    const kick = front.pushRequests();
    say(`   It publishes 3 read requests; RING_PUSH_REQUESTS_AND_CHECK_NOTIFY says ${kick ? 'notify' : 'no notify'} (req_event was 1).\n`);
    say('2. What the page holds now (npx xenlab-ring dump --proto blkif --file ...):');
    const d = dump('blkif', shm.buffer, 0) as { header: unknown; requests: unknown[] };
    say(indent(toJson({ header: d.header, firstRequest: d.requests[0] })));
    const echo = echoBlkif(shm.buffer, 0);
    say(`\n   A back end answers them (npx xenlab-ring echo): ${echo.answered} responses, notify=${echo.notify},`);
    say(`   and re-arms req_event to ${echo.header.reqEvent} (req_cons + 1) before going idle, as Xen's blkback does.`);
    shm.close();

    say('\n3. Now two separate processes share a ring file and kick each other with doorbells');
    say(`   (spin up to ${Doorbell.defaultSpinUs} µs, then sleep on a futex; no wake system call if the peer is awake).`);
    const count = 200_000;
    for (const holdOff of [true, false]) {
      const r = await runPeerPair({ count, holdOff, spinUs: Doorbell.defaultSpinUs, idleTimeoutMs: 20_000, pushEvery: 1 });
      const errors = r.front.errors + r.back.errors;
      say(
        `   hold-off ${holdOff ? 'on ' : 'off'}: ${count.toLocaleString()} requests in ${r.wallMs.toFixed(0)} ms ` +
          `(${Math.round((count / r.wallMs) * 1000).toLocaleString()} req/s), ` +
          `${(r.front.kicksSent + r.back.kicksSent).toLocaleString()} notifications, ` +
          `${(r.front.wakeSyscalls + r.back.wakeSyscalls).toLocaleString()} wake syscalls, ${errors} errors`,
      );
      if (errors) throw new Error(r.front.firstError ?? r.back.firstError ?? 'ring errors');
    }
    say('\n   With hold-off, a side notifies only when its peer asked (req_event/rsp_event), so one kick');
    say('   covers a whole batch. Read docs/shared-rings.md for the rules, and `npm run bench -- ring` for numbers.');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function indent(s: string): string {
  return s.replace(/^/gm, '   ');
}

main().catch((e) => {
  console.error(`demo failed: ${(e as Error).message}`);
  process.exit(1);
});
