import { xenconsInterface } from '@xenlab/ring-buffers';
import { describe, expect, it } from 'vitest';
import { ConsoleFront } from './console-front.ts';

function setup() {
  const page = new ArrayBuffer(4096);
  const bytes = new Uint8Array(page);
  const idx = new Uint32Array(page, 0, xenconsInterface.size / 4);
  const input: string[] = [];
  let kicks = 0;
  const front = new ConsoleFront(page, 0, () => kicks++, (b) => input.push(Buffer.from(b).toString()), 4096);
  const backendRead = () => {
    let s = '';
    while (idx[770] !== idx[771]) s += String.fromCharCode(bytes[1024 + (idx[770]! & 2047)]!), idx[770] = (idx[770]! + 1) >>> 0;
    return s;
  };
  const backendWrite = (s: string) => {
    for (const c of Buffer.from(s)) bytes[idx[769]! & 1023] = c, idx[769] = (idx[769]! + 1) >>> 0;
  };
  return { front, idx, input, backendRead, backendWrite, kicks: () => kicks };
}

describe('console front', () => {
  it('writes output into out and kicks the backend', () => {
    const t = setup();
    t.front.write(Buffer.from('hello'));
    expect(t.backendRead()).toBe('hello');
    expect(t.kicks()).toBe(1);
  });

  it('holds output that does not fit and sends it when the backend has made room', () => {
    const t = setup();
    t.front.write(Buffer.from('a'.repeat(3000)));
    expect(t.front.backlog).toBe(952);
    expect(t.backendRead()).toBe('a'.repeat(2048));
    t.front.kick();
    expect(t.backendRead()).toBe('a'.repeat(952));
    t.front.write(Buffer.from('b'.repeat(5000)));
    expect(t.front.counters.outputDropped).toBe(5000 - 4096);
  });

  it('reads input and passes it on; ignores an impossible in_prod', () => {
    const t = setup();
    t.backendWrite('ls\r');
    t.front.kick();
    expect(t.input).toEqual(['ls\r']);
    t.idx[769] = 99999;
    t.front.kick();
    expect(t.input).toHaveLength(1);
    expect(t.front.counters.badIndex).toBe(1);
  });
});
