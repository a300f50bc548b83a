import { describe, expect, it } from 'vitest';
import { TRAP_SLOT_BELL_OFFSET, TRAP_SLOT_BYTES, TRAP_SLOT_MAX_VCPUS, TRAP_SLOT_STATE, TrapSlot } from './trap-slot.ts';

const regs = { ax: 0x0e41, bx: 2, cx: 3, dx: 0x80, sp: 0x7bfa, bp: 5, si: 6, di: 7, cs: 0, ds: 0x40, es: 0x1000, ss: 0, ip: 0x7c12, flags: 0x0202 };

describe('trap slot', () => {
  it('lays slots out per vCPU before the doorbell, 64-byte aligned', () => {
    expect(TRAP_SLOT_BYTES % 64).toBe(0);
    expect(TRAP_SLOT_BELL_OFFSET).toBe(TRAP_SLOT_BYTES * TRAP_SLOT_MAX_VCPUS);
    expect(TRAP_SLOT_BELL_OFFSET + 64).toBeLessThanOrEqual(4096);
    const words = new Uint32Array(1024);
    new TrapSlot(words, 1).post(0x13, 'int', regs);
    expect(words[0]).toBe(TRAP_SLOT_STATE.IDLE); // vCPU 0's slot untouched
    expect(words[TRAP_SLOT_BYTES / 4]).toBe(TRAP_SLOT_STATE.PENDING);
  });

  it('in time: post -> the kernel reads the call and completes -> the worker takes the answer', () => {
    const words = new Uint32Array(1024);
    const worker = new TrapSlot(words, 0);
    const kernel = new TrapSlot(words, 0);
    worker.post(0x10, 'int', regs);
    expect(kernel.state).toBe(TRAP_SLOT_STATE.PENDING);
    expect([kernel.vector, kernel.kind]).toEqual([0x10, 'int']);
    expect(kernel.frame()).toEqual(regs);
    expect(kernel.complete({ ...regs, ax: 0x0e00, flags: 0x0203 })).toBe(true);
    expect(worker.state).toBe(TRAP_SLOT_STATE.DONE);
    expect(worker.park()).toBe(TRAP_SLOT_STATE.DONE); // too late to park: the answer is there
    expect(worker.frame()).toMatchObject({ ax: 0x0e00, flags: 0x0203 });
    worker.reset();
    expect(worker.state).toBe(TRAP_SLOT_STATE.IDLE);
  });

  it('late: the worker parks first, so the kernel learns it must iret', () => {
    const words = new Uint32Array(1024);
    const worker = new TrapSlot(words, 0);
    const kernel = new TrapSlot(words, 0);
    worker.post(0x13, 'exception', regs);
    expect(kernel.kind).toBe('exception');
    expect(worker.park()).toBe(TRAP_SLOT_STATE.PENDING);
    expect(kernel.complete(regs)).toBe(false);
    expect(kernel.state).toBe(TRAP_SLOT_STATE.PARKED);
  });

  it('registers are cut to 16 bits both ways (a kernel cannot hand the CPU wider values)', () => {
    const words = new Uint32Array(1024);
    const s = new TrapSlot(words, 0);
    s.post(0x11, 'int', { ...regs, ax: 0x12345 });
    expect(s.frame().ax).toBe(0x2345);
    words[3] = 0xffffffff;
    expect(s.frame().ax).toBe(0xffff);
  });
});
