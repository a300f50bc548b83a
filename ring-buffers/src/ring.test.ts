import { describe, expect, it } from 'vitest';
import { BackRing, FrontRing, needsNotify, ringEntries, SRING_HEADER_BYTES } from './ring.ts';
import { blkifRequest, blkifResponse, BLKIF_ENTRY_BYTES } from './io/blkif.ts';

const PAGE = 4096;

function pair(entryBytes = BLKIF_ENTRY_BYTES) {
  const buf = new ArrayBuffer(PAGE);
  const front = FrontRing.init(buf, 0, PAGE, entryBytes);
  const back = BackRing.attach(buf, 0, PAGE, entryBytes);
  return { buf, front, back, u32: new Uint32Array(buf, 0, 16) };
}

describe('ring sizing', () => {
  it('rounds the raw fit down to a power of two (__RD32)', () => {
    expect(ringEntries(4096, 112)).toBe(32);
    expect(ringEntries(4096, 12)).toBe(256);
    expect(ringEntries(4096, 8)).toBe(256);
    expect(ringEntries(4096, 16)).toBe(128);
    expect(ringEntries(2 * 4096, 112)).toBe(64);
    expect(() => ringEntries(64, 8)).toThrow();
  });
  it('places index i at slot i & (n-1): index 33 on a blkif ring is byte 176', () => {
    const { front } = pair();
    expect(front.slotOffset(33)).toBe(176);
    expect(front.slotOffset(0xffffffff)).toBe(SRING_HEADER_BYTES + 31 * 112);
  });
});

describe('front-end initialisation', () => {
  it('zeroes the producers, sets both events to 1 and clears pvt/pad', () => {
    const buf = new ArrayBuffer(PAGE);
    new Uint8Array(buf).fill(0xaa);
    const front = FrontRing.init(buf, 0, PAGE, 112);
    expect(front.header()).toEqual({ reqProd: 0, reqEvent: 1, rspProd: 0, rspEvent: 1 });
    expect([...new Uint8Array(buf, 16, 48)].every((b) => b === 0)).toBe(true);
    expect(front.nrEnts).toBe(32);
    expect(front.freeRequests()).toBe(32);
  });
});

describe('notification hold-off (the VR cases of the fact sheet)', () => {
  it.each([
    [0, 1, 1, true],
    [1, 2, 1, false],
    [2, 5, 3, true],
    [0xffffffff, 1, 0, true],
    [5, 5, 5, false],
    [0xfffffffe, 0xffffffff, 0, false],
    [0xfffffffe, 2, 0xffffffff, true],
  ])('old=%i new=%i event=%i -> notify %s', (o, n, e, want) => {
    expect(needsNotify(o, n, e)).toBe(want);
  });

  it('front notifies only when req_prod passes req_event; the back end re-arms on idle', () => {
    const { front, back } = pair();
    front.produced();
    expect(front.pushRequests()).toBe(true); // req_event 1 in (0,1]
    front.produced();
    expect(front.pushRequests()).toBe(false); // 1 not in (1,2]
    expect(back.unconsumedRequests()).toBe(2);
    back.copyRequest(new Uint8Array(112));
    back.copyRequest(new Uint8Array(112));
    expect(back.finalCheckForRequests()).toBe(false);
    expect(back.header().reqEvent).toBe(3); // the VR run: 2 consumed, req_event became 3
    front.produced();
    expect(front.pushRequests()).toBe(true);
  });

  it('back notifies only when rsp_prod passes rsp_event; the front re-arms', () => {
    const { front, back } = pair();
    front.produced(3);
    front.pushRequests();
    const scratch = new Uint8Array(112);
    for (let i = 0; i < 3; i++) back.copyRequest(scratch), back.produced();
    expect(back.pushResponses()).toBe(true); // rsp_event 1 in (0,3]
    expect(front.unconsumedResponses()).toBe(3);
    front.consumed(3);
    expect(front.finalCheckForResponses()).toBe(false);
    expect(front.header().rspEvent).toBe(4); // VR: 3 consumed, rsp_event became 4
  });

  it('the final check catches a request published before the consumer re-armed', () => {
    const { front, back, u32 } = pair();
    front.produced();
    front.pushRequests();
    back.copyRequest(new Uint8Array(112));
    // The front publishes a second request while the back end still holds req_event at 1:
    front.produced();
    expect(front.pushRequests()).toBe(false); // no kick: the back end is "awake"
    u32[1] = 1;
    expect(back.finalCheckForRequests()).toBe(true); // but the final check sees it
  });

  it('a producer that pushes nothing new never notifies', () => {
    const { front } = pair();
    expect(front.pushRequests()).toBe(false);
  });
});

describe('free-running indices across 2^32', () => {
  it('exchanges requests and responses while the indices wrap', () => {
    const buf = new ArrayBuffer(PAGE);
    const u32 = new Uint32Array(buf, 0, 4);
    FrontRing.init(buf, 0, PAGE, 112);
    const start = 0xffffffff - 40;
    u32[0] = start; // req_prod
    u32[2] = start; // rsp_prod
    const front = FrontRing.attach(buf, 0, PAGE, 112);
    const back = BackRing.resume(buf, 0, PAGE, 112);
    const scratch = new Uint8Array(112);
    const dv = new DataView(buf);
    let next = 0;
    let seen = 0;
    for (let round = 0; round < 10; round++) {
      while (!front.full()) {
        blkifRequest.write(dv, front.nextRequestOffset(), { operation: 0, id: BigInt(next++), nrSegments: 1 });
        front.produced();
      }
      front.pushRequests();
      const n = back.unconsumedRequests();
      expect(n).toBe(32);
      for (let i = 0; i < n; i++) {
        back.copyRequest(scratch);
        const req = blkifRequest.read(new DataView(scratch.buffer), 0);
        blkifResponse.write(dv, back.nextResponseOffset(), { id: req.id, operation: req.operation, status: 0 });
        back.produced();
      }
      back.pushResponses();
      const m = front.unconsumedResponses();
      expect(m).toBe(32);
      for (let i = 0; i < m; i++) {
        expect(blkifResponse.read(dv, front.responseOffset()).id).toBe(BigInt(seen++));
        front.consumed();
      }
    }
    expect(front.reqProdPvt).toBe((start + 320) >>> 0);
    expect(front.reqProdPvt).toBeLessThan(start); // wrapped
    expect(front.broken).toBeNull();
    expect(back.broken).toBeNull();
  });
});

describe('hostile peers', () => {
  it('a back end never consumes more than the ring holds, whatever req_prod claims', () => {
    const { back, u32 } = pair();
    u32[0] = 32;
    expect(back.unconsumedRequests()).toBe(32);
    u32[0] = 33; // 33 outstanding on a 32-entry ring: impossible
    expect(back.unconsumedRequests()).toBe(0);
    expect(back.broken?.kind).toBe('request-overflow');
    u32[0] = 1;
    expect(back.unconsumedRequests()).toBe(0); // stays stopped
    expect(back.finalCheckForRequests()).toBe(false);
  });

  it('a req_prod far behind (negative distance) is reported, not looped over', () => {
    const { back, u32 } = pair();
    u32[0] = 0xfffffff0;
    expect(back.unconsumedRequests()).toBe(0);
    expect(back.broken).not.toBeNull();
  });

  it('limits consumption by the responses produced so far', () => {
    const { back, u32 } = pair();
    u32[0] = 32;
    const scratch = new Uint8Array(112);
    for (let i = 0; i < 32; i++) back.copyRequest(scratch);
    // All 32 consumed, none answered: even if req_prod moves on, no room to consume more.
    u32[0] = 40;
    expect(back.unconsumedRequests()).toBe(0);
    expect(back.broken?.kind).toBe('request-overflow');
  });

  it('a front end rejects responses for requests it never made', () => {
    const { front, u32 } = pair();
    front.produced(2);
    front.pushRequests();
    u32[2] = 3;
    expect(front.unconsumedResponses()).toBe(0);
    expect(front.broken?.kind).toBe('response-overflow');
  });

  it('copyRequest snapshots the slot: later writes by the front end do not change the copy', () => {
    const { buf, front, back } = pair();
    const dv = new DataView(buf);
    blkifRequest.write(dv, front.nextRequestOffset(), { operation: 1, nrSegments: 3, id: 7n, sectorNumber: 100 });
    front.produced();
    front.pushRequests();
    const off = back.requestOffset();
    const copy = new Uint8Array(112);
    back.copyRequest(copy);
    blkifRequest.write(dv, off, { nrSegments: 200, sectorNumber: 1e12 });
    const req = blkifRequest.read(new DataView(copy.buffer), 0);
    expect(req.nrSegments).toBe(3);
    expect(req.sectorNumber).toBe(100);
  });

  it('refuses a ring that does not fit its buffer', () => {
    expect(() => FrontRing.init(new ArrayBuffer(100), 0, PAGE, 112)).toThrow(RangeError);
    expect(() => BackRing.attach(new ArrayBuffer(PAGE), 8, PAGE, 112)).toThrow(RangeError);
  });
});
