import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { xenconsInterface } from '@xenlab/ring-buffers';
import { describe, expect, it } from 'vitest';
import { ConsoleBackend } from './index.ts';

/** A guest that writes the page by hand (it can lie about its indices). */
function setup(maxPendingInput?: number) {
  const page = new ArrayBuffer(4096);
  const bytes = new Uint8Array(page);
  const idx = new Uint32Array(page, 0, xenconsInterface.size / 4);
  const I = { inCons: 768, inProd: 769, outCons: 770, outProd: 771 };
  const logPath = join(mkdtempSync(join(tmpdir(), 'xencons-')), 'guest-7.log');
  const seen: string[] = [];
  const logs: string[] = [];
  let notified = 0;
  const be = new ConsoleBackend({
    buffer: page, offset: 0, domid: 7, logPath, notify: () => notified++,
    onOutput: (b) => seen.push(Buffer.from(b).toString()), log: (l) => logs.push(l), maxPendingInput,
  });
  const guestWrite = (s: string) => {
    let prod = idx[I.outProd]!;
    for (const c of Buffer.from(s)) bytes[1024 + (prod++ & 2047)] = c;
    idx[I.outProd] = prod >>> 0;
  };
  const guestRead = () => {
    let out = '';
    while (idx[I.inCons] !== idx[I.inProd]) out += String.fromCharCode(bytes[idx[I.inCons]! & 1023]!), idx[I.inCons] = (idx[I.inCons]! + 1) >>> 0;
    return out;
  };
  return { be, idx, I, logPath, seen, logs, guestWrite, guestRead, notified: () => notified, log: () => readFileSync(logPath, 'utf8') };
}

describe('console backend', () => {
  it('logs output from the first byte and hands it to the client', () => {
    const t = setup();
    expect(t.log()).toBe('');
    t.guestWrite('H');
    t.be.kick();
    expect(t.log()).toBe('H');
    t.guestWrite('ello\r\n');
    t.be.kick();
    expect(t.log()).toBe('Hello\r\n');
    expect(t.seen).toEqual(['H', 'ello\r\n']);
    expect(t.idx[t.I.outCons]).toBe(7);
    expect(t.be.counters.bytesOut).toBe(7);
  });

  it('follows indices across the ring end and 2^32', () => {
    const t = setup();
    t.idx[t.I.outCons] = t.idx[t.I.outProd] = 0xfffffffe;
    t.guestWrite('wrap!');
    t.be.kick();
    expect(t.log()).toBe('wrap!');
    expect(t.idx[t.I.outCons]).toBe(3);
  });

  it('a full 2048-byte ring is fine; an impossible out_prod is discarded and logged once', () => {
    const t = setup();
    t.guestWrite('x'.repeat(2048));
    t.be.kick();
    expect(t.log().length).toBe(2048);
    t.idx[t.I.outProd] = (t.idx[t.I.outCons]! + 5000) >>> 0;
    t.be.kick();
    t.idx[t.I.outProd] = (t.idx[t.I.outProd]! + 0x80000000) >>> 0;
    t.be.kick();
    expect(t.log().length).toBe(2048);
    expect(t.be.counters.badIndex).toBe(2);
    expect(t.logs).toHaveLength(1);
    expect(t.logs[0]).toContain('console dom7: out_prod');
    t.guestWrite('ok');
    t.be.kick();
    expect(t.log().endsWith('ok')).toBe(true);
  });

  it('delivers input, holds what does not fit until the guest reads, and caps the backlog', () => {
    const t = setup(1500);
    t.be.input(Buffer.from('a'.repeat(1000)));
    t.be.input(Buffer.from('b'.repeat(1000)));
    expect(t.idx[t.I.inProd]).toBe(1024);
    t.be.input(Buffer.from('c'.repeat(1000)));
    expect(t.be.counters.inputDropped).toBe(476);
    expect(t.guestRead()).toBe('a'.repeat(1000) + 'b'.repeat(24));
    t.be.kick();
    expect(t.guestRead()).toBe('b'.repeat(976) + 'c'.repeat(48));
    t.be.kick();
    expect(t.guestRead()).toBe('c'.repeat(476));
    expect(t.be.counters.bytesIn).toBe(2524);
    expect(t.notified()).toBe(4);
  });

  it('an impossible in_cons holds input back instead of overwriting', () => {
    const t = setup();
    t.idx[t.I.inCons] = 5000;
    t.be.input(Buffer.from('z'));
    expect(t.idx[t.I.inProd]).toBe(0);
    expect(t.be.counters.badIndex).toBe(1);
  });
});
