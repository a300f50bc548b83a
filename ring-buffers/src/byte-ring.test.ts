import { describe, expect, it } from 'vitest';
import { BAD_INDEX, ByteRing } from './byte-ring.ts';
import { xenconsInterface, XENCONS_OUT_BYTES } from './io/console.ts';

function consoleOut() {
  const buf = new ArrayBuffer(4096);
  const ring = new ByteRing(buf, xenconsInterface.offsetOf('out'), XENCONS_OUT_BYTES, xenconsInterface.offsetOf('outCons'), xenconsInterface.offsetOf('outProd'));
  return { buf, ring, idx: new Uint32Array(buf) };
}

describe('ByteRing', () => {
  it('streams bytes across the wrap of the buffer and of the 32-bit indices', () => {
    const { ring, idx } = consoleOut();
    const start = 0xffffffff - 700;
    idx[xenconsInterface.offsetOf('outCons') / 4] = start;
    idx[xenconsInterface.offsetOf('outProd') / 4] = start;
    let sent = 0;
    let got = 0;
    for (let round = 0; round < 20; round++) {
      const chunk = Uint8Array.from({ length: 1500 }, (_, i) => (sent + i) & 0xff);
      const n = ring.write(chunk);
      expect(n).toBe(Math.min(1500, XENCONS_OUT_BYTES));
      sent += n;
      const out = ring.read(1000)!;
      out.forEach((b, i) => expect(b).toBe((got + i) & 0xff));
      got += out.length;
      const rest = ring.read()!;
      rest.forEach((b, i) => expect(b).toBe((got + i) & 0xff));
      got += rest.length;
    }
    expect(got).toBe(sent);
    expect(ring.prod).toBeLessThan(start); // the indices wrapped
  });

  it('fills to exactly size and no further', () => {
    const { ring } = consoleOut();
    expect(ring.write(new Uint8Array(5000))).toBe(2048);
    expect(ring.room()).toBe(0);
    expect(ring.write(new Uint8Array(1))).toBe(0);
    expect(ring.available()).toBe(2048);
  });

  it('reports an impossible peer index instead of believing it', () => {
    const { ring, idx } = consoleOut();
    idx[xenconsInterface.offsetOf('outProd') / 4] = 5000;
    expect(ring.available()).toBe(BAD_INDEX);
    expect(ring.read()).toBeNull();
    expect(ring.write(new Uint8Array(4))).toBe(BAD_INDEX);
    ring.skipToProducer();
    expect(ring.available()).toBe(0);
  });

  it('refuses a size that is not a power of two', () => {
    expect(() => new ByteRing(new ArrayBuffer(4096), 0, 1000, 2048, 2052)).toThrow(/power of two/);
  });
});
