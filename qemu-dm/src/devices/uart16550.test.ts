import { describe, expect, it } from 'vitest';
import { UART_IIR, UART_LSR, Uart16550 } from './uart16550.ts';

function setup() {
  const out: number[] = [];
  const irqs: boolean[] = [];
  const u = new Uart16550({ irq: (l) => irqs.push(l), sink: (b) => out.push(b) });
  const level = () => irqs.at(-1) ?? false;
  return { u, out, irqs, level };
}

describe('16550 UART', () => {
  it('THR bytes go to the sink; THRE and TEMT stay set', () => {
    const { u, out } = setup();
    for (const c of 'hi\r\n') u.write(0, 1, c.charCodeAt(0));
    expect(String.fromCharCode(...out)).toBe('hi\r\n');
    expect(u.read(5, 1) & (UART_LSR.THRE | UART_LSR.TEMT)).toBe(UART_LSR.THRE | UART_LSR.TEMT);
  });

  it('DLAB switches offsets 0 and 1 to the divisor latch', () => {
    const { u, out } = setup();
    u.write(3, 1, 0x80);
    u.write(0, 1, 0x01);
    u.write(1, 1, 0x00);
    expect(u.read(0, 1)).toBe(1);
    expect(out).toEqual([]); // not transmitted
    u.write(3, 1, 0x03);
    expect(u.divisor).toBe(1);
    expect(u.read(3, 1)).toBe(0x03);
  });

  it('received bytes: LSR.DR, RBR in order; reading an empty RBR gives 0', () => {
    const { u } = setup();
    expect(u.read(0, 1)).toBe(0);
    u.receive([0x41, 0x42]);
    expect(u.read(5, 1) & UART_LSR.DR).toBe(UART_LSR.DR);
    expect(u.read(0, 1)).toBe(0x41);
    expect(u.read(0, 1)).toBe(0x42);
    expect(u.read(5, 1) & UART_LSR.DR).toBe(0);
  });

  it('without FIFOs the holding register takes one byte at a time; host input waits, never overruns', () => {
    const { u } = setup();
    u.receive([1, 2, 3]);
    expect([u.read(0, 1), u.read(0, 1), u.read(0, 1)]).toEqual([1, 2, 3]);
    expect(u.read(5, 1) & UART_LSR.OE).toBe(0);
  });

  it('interrupts: RDA and THRE by priority in IIR, gated by MCR.OUT2', () => {
    const { u, level } = setup();
    u.write(1, 1, 0x03); // RDA + THRE
    expect(u.read(2, 1) & 0x0f).toBe(UART_IIR.THRE);
    expect(level()).toBe(false); // OUT2 clear: the line does not reach the PIC
    u.write(4, 1, 0x08);
    u.write(1, 1, 0x00);
    u.write(1, 1, 0x03);
    expect(level()).toBe(true);
    u.receive([0x55]);
    expect(u.read(2, 1) & 0x0f).toBe(UART_IIR.RDA); // RDA outranks THRE
    u.read(0, 1);
    expect(u.read(2, 1) & 0x0f).toBe(UART_IIR.THRE);
    // reading IIR while it shows THRE clears that source
    expect(u.read(2, 1) & 0x0f).toBe(UART_IIR.NONE);
    expect(level()).toBe(false);
    u.write(0, 1, 0x21); // transmitting makes THR empty again → THRE
    expect(level()).toBe(true);
  });

  it('FIFO mode: IIR bits 7-6 set, trigger level, character timeout below the trigger', () => {
    const { u } = setup();
    u.write(2, 1, 0xc1); // FIFO on, trigger 14
    u.write(1, 1, 0x01);
    expect(u.read(2, 1) & 0xc0).toBe(0xc0);
    u.receive([1, 2, 3]);
    expect(u.read(2, 1) & 0x0f).toBe(UART_IIR.TIMEOUT);
    u.receive(new Array(20).fill(7));
    expect(u.read(2, 1) & 0x0f).toBe(UART_IIR.RDA);
    u.write(2, 1, 0x03); // clear receive FIFO (refilled from the host queue)
    let n = 0;
    while (u.read(5, 1) & UART_LSR.DR && n < 100) {
      u.read(0, 1);
      n++;
    }
    expect(n).toBe(7); // 23 received: the 16 in the FIFO were discarded, the 7 still queued moved in
  });

  it('loopback: transmitted bytes come back; a full FIFO overruns; MSR mirrors MCR', () => {
    const { u, out } = setup();
    u.write(4, 1, 0x10 | 0x01); // LOOP + DTR
    expect(u.read(6, 1) & 0xf0).toBe(0x20); // DSR
    u.write(0, 1, 0x61);
    u.write(0, 1, 0x62); // holding register full: overrun
    expect(out).toEqual([]);
    const lsr = u.read(5, 1);
    expect(lsr & (UART_LSR.DR | UART_LSR.OE)).toBe(UART_LSR.DR | UART_LSR.OE);
    expect(u.read(5, 1) & UART_LSR.OE).toBe(0); // cleared by reading LSR
    expect(u.read(0, 1)).toBe(0x61);
  });

  it('scratch register, read-only LSR/MSR, snapshot and restore', () => {
    const { u } = setup();
    u.write(7, 1, 0xa5);
    u.write(5, 1, 0x00);
    u.write(6, 1, 0x00);
    expect(u.read(7, 1)).toBe(0xa5);
    expect(u.read(5, 1) & UART_LSR.THRE).toBe(UART_LSR.THRE);
    u.receive([9, 8]);
    const snap = JSON.parse(JSON.stringify(u.snapshot()));
    const v = setup().u;
    v.restore(snap);
    expect([v.read(7, 1), v.read(0, 1), v.read(0, 1)]).toEqual([0xa5, 9, 8]);
  });
});
