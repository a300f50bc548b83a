/**
 * Hand tests: small programs as raw bytes with their assembly beside them (no assembler needed).
 * They cover what the single-instruction conformance data cannot: multi-instruction programs,
 * exits and their completion, interrupts, the run budget, and state save/restore.
 */
import { describe, expect, it } from 'vitest';
import { AX, BX, CX, CS, DI, DS, DX, ES, SI, SP, SS, Cpu } from './cpu.ts';
import { AF, CF, DF, IF, OF, PF, SF, TF, ZF } from './flags.ts';
import { flatMemory } from './memory.ts';
import { CODE_IP, CODE_SEG, DATA_SEG, STACK_SEG, machine, w } from './test-machine.ts';

const HLT = 0xf4;

/** Install an IVT entry `vector` → CODE_SEG:offset. */
function vector(ram: Uint8Array, v: number, offset: number): void {
  ram[v * 4] = offset & 0xff;
  ram[v * 4 + 1] = offset >> 8;
  ram[v * 4 + 2] = CODE_SEG & 0xff;
  ram[v * 4 + 3] = CODE_SEG >> 8;
}

describe('programs', () => {
  it('sums 1..10 in a LOOP', () => {
    const { cpu } = machine([
      0xb9, ...w(10), //        mov cx, 10
      0x31, 0xc0, //            xor ax, ax
      0x01, 0xc8, //      l:    add ax, cx
      0xe2, 0xfc, //            loop l
      HLT, //                   hlt
    ]);
    const exit = cpu.run(1000);
    expect(exit.reason).toBe('hlt');
    expect(exit.executed).toBe(2 + 20 + 1);
    expect(cpu.regs[AX]).toBe(55);
    expect(cpu.regs[CX]).toBe(0);
  });

  it('computes ADD/SUB/INC flags exactly', () => {
    const { cpu } = machine([
      0xb0, 0x7f, //            mov al, 7fh
      0x04, 0x01, //            add al, 1      ; 80h: OF SF AF, no CF
      0x9c, //                  pushf
      0x2c, 0x80, //            sub al, 80h    ; 0: ZF PF
      0x9c, //                  pushf
      0xf9, //                  stc
      0xfe, 0xc8, //            dec al         ; FFh, CF kept
      0x9c, //                  pushf
      HLT,
    ]);
    expect(cpu.run(100).reason).toBe('hlt');
    const st = cpu.getState();
    const pushed = (i: number): number => {
      const a = st.ss * 16 + 0xfffe - 2 * (i + 1);
      return cpu.rdLin8(a) | (cpu.rdLin8(a + 1) << 8);
    };
    const arith = OF | SF | ZF | AF | PF | CF;
    expect(pushed(0) & arith).toBe(OF | SF | AF);
    expect(pushed(1) & arith).toBe(ZF | PF);
    expect(pushed(2) & arith).toBe(SF | PF | AF | CF);
    expect(cpu.regs8[0]).toBe(0xff);
  });

  it('copies with REP MOVSW and finds a byte with REPNE SCASB', () => {
    const { cpu, ram } = machine([
      0xbe, ...w(0x0000), //    mov si, 0
      0xbf, ...w(0x0100), //    mov di, 100h
      0xb9, ...w(8), //         mov cx, 8
      0xfc, //                  cld
      0xf3, 0xa5, //            rep movsw
      0xbf, ...w(0x0100), //    mov di, 100h
      0xb9, ...w(16), //        mov cx, 16
      0xb0, 0x0a, //            mov al, 0Ah
      0xf2, 0xae, //            repne scasb
      HLT,
    ]);
    for (let i = 0; i < 16; i++) ram[DATA_SEG * 16 + i] = i;
    expect(cpu.run(1000).reason).toBe('hlt');
    expect([...ram.subarray(DATA_SEG * 16 + 0x100, DATA_SEG * 16 + 0x110)]).toEqual([...Array(16).keys()]);
    expect(cpu.regs[DI]).toBe(0x10b); // one past the match
    expect(cpu.regs[CX]).toBe(16 - 11);
    expect(cpu.zf()).toBe(true);
  });

  it('CALL/RET and far CALL/RETF keep the stack balanced', () => {
    const { cpu } = machine([
      0xe8, ...w(0x0006), //    call near f     (at 0109)
      0x9a, ...w(0x010b), ...w(CODE_SEG), // call far g (at 010b)
      HLT, //                   hlt             (0108)
      0x40, //              f:  inc ax
      0xc3, //                  ret
      0x43, //              g:  inc bx
      0xcb, //                  retf
    ]);
    expect(cpu.run(100).reason).toBe('hlt');
    expect(cpu.regs[AX]).toBe(1);
    expect(cpu.regs[BX]).toBe(1);
    expect(cpu.regs[SP]).toBe(0xfffe);
  });

  it('INT n vectors through the IVT and IRET returns with FLAGS restored', () => {
    const { cpu, ram } = machine([
      0xfb, //                  sti
      0xcd, 0x21, //            int 21h
      HLT, //                   hlt
      0xb4, 0x4c, //      isr:  mov ah, 4Ch    (0104)
      0xcf, //                  iret
    ]);
    vector(ram, 0x21, 0x104);
    expect(cpu.run(100).reason).toBe('hlt');
    expect(cpu.regs8[1]).toBe(0x4c);
    expect(cpu.getFlags() & IF).toBe(IF);
    expect(cpu.ip).toBe(CODE_IP + 4);
  });

  it('DIV by zero: the 8086 returns past the DIV, the 186 to it', () => {
    for (const model of ['8086', '80186'] as const) {
      const { cpu, ram } = machine([
        0x31, 0xdb, //          xor bx, bx
        0xf7, 0xf3, //          div bx         (0102)
        HLT, //                                (0104)
      ], { model });
      ram[0] = 0x00; ram[1] = 0x02; ram[2] = CODE_SEG & 0xff; ram[3] = CODE_SEG >> 8; // #DE → 1000:0200
      ram[CODE_SEG * 16 + 0x200] = HLT;
      cpu.run(10);
      const sp = cpu.regs[SP];
      const pushedIp = ram[STACK_SEG * 16 + sp] | (ram[STACK_SEG * 16 + sp + 1] << 8);
      expect(pushedIp).toBe(model === '8086' ? 0x104 : 0x102);
    }
  });
});

describe('80186 instructions', () => {
  it('PUSHA/POPA, ENTER/LEAVE, PUSH imm, IMUL imm, shifts by imm', () => {
    const { cpu } = machine([
      0xb8, ...w(0x1111), //    mov ax, 1111h
      0x60, //                  pusha
      0x31, 0xc0, //            xor ax, ax
      0x61, //                  popa
      0xc8, ...w(0x0010), 0x00, // enter 10h, 0
      0xc9, //                  leave
      0x6a, 0xff, //            push -1
      0x5b, //                  pop bx
      0x6b, 0xcb, 0x05, //      imul cx, bx, 5
      0xc1, 0xe0, 0x04, //      shl ax, 4
      HLT,
    ]);
    expect(cpu.run(100).reason).toBe('hlt');
    expect(cpu.regs[AX]).toBe(0x1110);
    expect(cpu.regs[BX]).toBe(0xffff);
    expect(cpu.regs[CX]).toBe(0xfffb);
    expect(cpu.regs[SP]).toBe(0xfffe);
  });

  it('BOUND out of range raises interrupt 5 at the BOUND', () => {
    const { cpu, ram } = machine([
      0xb8, ...w(20), //        mov ax, 20
      0x62, 0x06, ...w(0x0000), // bound ax, [0000]   (0103)
      HLT,
    ]);
    ram[DATA_SEG * 16] = 0; ram[DATA_SEG * 16 + 2] = 10; // bounds 0..10
    vector(ram, 5, 0x200);
    ram[CODE_SEG * 16 + 0x200] = HLT;
    cpu.run(10);
    const sp = cpu.regs[SP];
    expect(ram[STACK_SEG * 16 + sp] | (ram[STACK_SEG * 16 + sp + 1] << 8)).toBe(0x103);
  });

  it('undefined opcodes raise #UD (vector 6) on the 186 but run as aliases on the 8086', () => {
    // 0x63 is an alias of JNO (0x73) on the 8086.
    const m86 = machine([0x63, 0x01, HLT, HLT], { model: '8086' });
    m86.cpu.setFlags(0);
    m86.cpu.run(10);
    expect(m86.cpu.ip).toBe(CODE_IP + 4);
    const m186 = machine([0x63, 0x01, HLT, HLT], { model: '80186' });
    vector(m186.ram, 6, 0x300);
    m186.ram[CODE_SEG * 16 + 0x300] = HLT;
    m186.cpu.run(10);
    expect(m186.cpu.ip).toBe(0x301);
  });
});

describe('exits', () => {
  it('IN exits when no port handler takes it, and completeIo supplies the value', () => {
    const { cpu } = machine([
      0xe4, 0x60, //            in al, 60h
      0x88, 0xc3, //            mov bl, al
      HLT,
    ]);
    const exit = cpu.run(100);
    expect(exit).toMatchObject({ reason: 'io', dir: 'in', port: 0x60, size: 1, string: false, executed: 1 });
    expect(() => cpu.run(1)).toThrow(/completeIo/);
    cpu.completeIo(0x42);
    expect(cpu.run(100).reason).toBe('hlt');
    expect(cpu.regs8[6]).toBe(0x42); // BL
  });

  it('OUT exits with the value; a synchronous handler avoids the exit', () => {
    const seen: number[] = [];
    const { cpu } = machine([
      0xb8, ...w(0xbeef), //    mov ax, 0BEEFh
      0xba, ...w(0x3f8), //     mov dx, 3F8h
      0xef, //                  out dx, ax
      0xe6, 0x80, //            out 80h, al
      HLT,
    ], { ports: { out: (port, _size, v) => (port === 0x80 ? (seen.push(v), true) : false) } });
    const exit = cpu.run(100);
    expect(exit).toMatchObject({ reason: 'io', dir: 'out', port: 0x3f8, size: 2, value: 0xbeef });
    expect(cpu.run(100).reason).toBe('hlt');
    expect(seen).toEqual([0xef]);
  });

  it('REP INSW is one exit with a count; the caller moves the data', () => {
    const { cpu, ram } = machine([
      0xbf, ...w(0x0010), //    mov di, 10h
      0xb9, ...w(4), //         mov cx, 4
      0xba, ...w(0x1f0), //     mov dx, 1F0h
      0xf3, 0x6d, //            rep insw
      HLT,
    ]);
    const exit = cpu.run(100);
    expect(exit).toMatchObject({ reason: 'io', dir: 'in', port: 0x1f0, size: 2, string: true, rep: true, count: 4, step: 2 });
    if (exit.reason !== 'io') throw new Error('unreachable');
    expect(exit.addr).toBe(DATA_SEG * 16 + 0x10);
    for (let i = 0; i < exit.count; i++) { ram[exit.addr + 2 * i] = 0xa0 + i; ram[exit.addr + 2 * i + 1] = 0x55; }
    cpu.completeIo();
    expect(cpu.regs[CX]).toBe(0);
    expect(cpu.regs[DI]).toBe(0x18);
    expect(cpu.run(100).reason).toBe('hlt');
    expect(ram[DATA_SEG * 16 + 0x16]).toBe(0xa3);
  });

  it('a partially completed REP OUTSB resumes with the remaining count (DF=1)', () => {
    const { cpu } = machine([
      0xfd, //                  std
      0xbe, ...w(0x0020), //    mov si, 20h
      0xb9, ...w(5), //         mov cx, 5
      0xf3, 0x6e, //            rep outsb
      HLT,
    ]);
    let exit = cpu.run(100);
    expect(exit).toMatchObject({ reason: 'io', dir: 'out', count: 5, step: -1, addr: DATA_SEG * 16 + 0x20 });
    cpu.completeIo(2);
    expect(cpu.regs[CX]).toBe(3);
    expect(cpu.regs[SI]).toBe(0x1e);
    exit = cpu.run(100);
    expect(exit).toMatchObject({ reason: 'io', count: 3, addr: DATA_SEG * 16 + 0x1e });
    cpu.completeIo();
    expect(cpu.run(100).reason).toBe('hlt');
    expect(cpu.getFlags() & DF).toBe(DF);
  });

  it('MMIO: writes are posted exits, reads exit and the instruction re-executes with the value', () => {
    const { cpu } = machine([
      0xb8, ...w(0xb800), //    mov ax, 0B800h
      0x8e, 0xc0, //            mov es, ax
      0x26, 0xc7, 0x06, ...w(0x0002), ...w(0x0741), // mov word [es:2], 0741h
      0x26, 0x03, 0x1e, ...w(0x0004), // add bx, [es:4]
      HLT,
    ], { mmioPages: [0xb8] });
    cpu.regs[BX] = 1;
    let exit = cpu.run(100);
    expect(exit).toMatchObject({ reason: 'mmio', dir: 'write', addr: 0xb8002, size: 2, value: 0x0741 });
    exit = cpu.run(100);
    expect(exit).toMatchObject({ reason: 'mmio', dir: 'read', addr: 0xb8004, size: 2 });
    expect(cpu.regs[BX]).toBe(1); // nothing retired yet
    cpu.completeMmioRead(0x1000);
    expect(cpu.run(100).reason).toBe('hlt');
    expect(cpu.regs[BX]).toBe(0x1001);
  });

  it('MMIO: a REP STOSW into MMIO exits once per element and resumes where it stopped', () => {
    const { cpu } = machine([
      0xb8, ...w(0xb800), //    mov ax, 0B800h
      0x8e, 0xc0, //            mov es, ax
      0x31, 0xff, //            xor di, di
      0xb9, ...w(3), //         mov cx, 3
      0xb8, ...w(0x0720), //    mov ax, 0720h
      0xf3, 0xab, //            rep stosw
      HLT,
    ], { mmioPages: [0xb8] });
    const writes: number[] = [];
    for (;;) {
      const exit = cpu.run(100);
      if (exit.reason === 'hlt') break;
      expect(exit).toMatchObject({ reason: 'mmio', dir: 'write', size: 2, value: 0x0720 });
      if (exit.reason === 'mmio') writes.push(exit.addr);
    }
    expect(writes).toEqual([0xb8000, 0xb8002, 0xb8004]);
    expect(cpu.regs[CX]).toBe(0);
  });

  it('MMIO: an interrupt frame pushed into MMIO reports every write', () => {
    const { cpu, ram } = machine([0xcd, 0x40], { mmioPages: [0x3f] }); // int 40h with the stack in MMIO
    vector(ram, 0x40, 0x200);
    ram[CODE_SEG * 16 + 0x200] = HLT;
    const writes: Array<[number, number]> = [];
    for (;;) {
      const exit = cpu.run(100);
      if (exit.reason === 'hlt') break;
      if (exit.reason === 'mmio') writes.push([exit.addr, exit.value]);
    }
    expect(writes.map(([a]) => a)).toEqual([0x3fffc, 0x3fffa, 0x3fff8]);
    expect(writes[2][1]).toBe(CODE_IP + 2); // the return IP
  });

  it('MMIO: replayed read values are used by their own instruction only', () => {
    const { cpu } = machine([
      0xa1, ...w(0x0000), //    mov ax, [0]
      0x8b, 0x1e, ...w(0x0002), // mov bx, [2]
      HLT,
    ], { mmioPages: [0xb8] });
    cpu.sregs[DS] = 0xb800;
    expect(cpu.run(100)).toMatchObject({ reason: 'mmio', dir: 'read', addr: 0xb8000 });
    cpu.completeMmioRead(0x1111);
    expect(cpu.run(100)).toMatchObject({ reason: 'mmio', dir: 'read', addr: 0xb8002 });
    cpu.completeMmioRead(0x2222);
    expect(cpu.run(100).reason).toBe('hlt');
    expect(cpu.regs[AX]).toBe(0x1111);
    expect(cpu.regs[BX]).toBe(0x2222);
  });

  it('MMIO handled synchronously does not exit', () => {
    const { cpu } = machine([
      0xa1, ...w(0x0000), //    mov ax, [0]    (DS = B800h)
      HLT,
    ], { mmioPages: [0xb8], mmioRead: (a, size) => (a === 0xb8000 && size === 2 ? 0x1234 : undefined) });
    cpu.sregs[DS] = 0xb800;
    expect(cpu.run(100).reason).toBe('hlt');
    expect(cpu.regs[AX]).toBe(0x1234);
  });

  it('software interrupts in the trap table exit without touching the stack', () => {
    const { cpu } = machine([
      0xb4, 0x02, //            mov ah, 2
      0xcd, 0x13, //            int 13h
      0x73, 0x01, //            jnc ok
      HLT,
      0x41, //             ok:  inc cx
      HLT,
    ]);
    cpu.setInterruptExit(0x13, true);
    const exit = cpu.run(100);
    expect(exit).toMatchObject({ reason: 'interrupt-exit', vector: 0x13, kind: 'int', executed: 2 });
    expect(cpu.regs[SP]).toBe(0xfffe);
    expect(cpu.getReg('ah')).toBe(2);
    cpu.setReg('ah', 0);
    cpu.setCarry(false);
    expect(cpu.run(100).reason).toBe('hlt');
    expect(cpu.regs[CX]).toBe(1);
  });

  it('HLT exits; a raised IRQ wakes it when IF=1, after the STI shadow', () => {
    const { cpu, ram } = machine([
      0xfb, //                  sti
      HLT, //                   hlt
      0x41, //                  inc cx
      HLT, //                   hlt
      0x41, //                  inc cx
      HLT, //                   hlt
    ]);
    ram[CODE_SEG * 16 + 0x200] = 0x43; // isr: inc bx
    ram[CODE_SEG * 16 + 0x201] = 0xcf; //      iret
    vector(ram, 8, 0x200);
    cpu.raiseIrq(8);
    // STI's shadow lets the HLT run first; the pending IRQ then wakes the CPU at once.
    let exit = cpu.run(100);
    expect(exit.reason).toBe('hlt');
    expect(cpu.regs[BX]).toBe(1);
    expect(cpu.regs[CX]).toBe(1);
    exit = cpu.run(100);
    expect(exit).toMatchObject({ reason: 'hlt', executed: 0 });
    cpu.raiseIrq(8);
    exit = cpu.run(100);
    expect(exit.reason).toBe('hlt');
    expect(cpu.regs[BX]).toBe(2);
    expect(cpu.regs[CX]).toBe(2);
  });

  it('an IRQ raised during CLI is taken one instruction after STI', () => {
    const { cpu, ram } = machine([
      0xfa, //                  cli
      0xb9, ...w(50), //        mov cx, 50
      0xe2, 0xfe, //      l:    loop l
      0xfb, //                  sti
      0x40, //                  inc ax        ; runs in STI's shadow, before the IRQ
      0x89, 0xc2, //            mov dx, ax    ; the ISR has run by now
      HLT,
    ]);
    ram[CODE_SEG * 16 + 0x200] = 0x89; // isr: mov bx, ax
    ram[CODE_SEG * 16 + 0x201] = 0xc3;
    ram[CODE_SEG * 16 + 0x202] = 0xcf; //      iret
    vector(ram, 0x20, 0x200);
    expect(cpu.run(3).reason).toBe('budget');
    cpu.raiseIrq(0x20);
    expect(cpu.run(1000).reason).toBe('hlt');
    expect(cpu.regs[BX]).toBe(1); // the ISR saw AX after the INC
    expect(cpu.regs[DX]).toBe(1);
    expect(cpu.regs[CX]).toBe(0);
  });

  it('an IRQ waits while IF=0', () => {
    const { cpu } = machine([0xfa, 0x90, 0x90, HLT]); // cli; nop; nop; hlt
    cpu.raiseIrq(9);
    expect(cpu.run(100).reason).toBe('hlt');
    expect(cpu.pendingIrqCount).toBe(1);
  });

  it('the budget stops a loop, and a REP splits across runs', () => {
    const { cpu } = machine([
      0xb9, ...w(100), //       mov cx, 100
      0xf3, 0xaa, //            rep stosb
      0xeb, 0xfe, //       l:   jmp l
    ]);
    let exit = cpu.run(11);
    expect(exit).toMatchObject({ reason: 'budget', executed: 11 });
    expect(cpu.regs[CX]).toBe(90);
    expect(cpu.ip).toBe(CODE_IP + 3);
    exit = cpu.run(1000);
    expect(exit).toMatchObject({ reason: 'budget', executed: 1000 });
    expect(cpu.regs[CX]).toBe(0);
    expect(cpu.ip).toBe(CODE_IP + 5);
  });

  it('single-step: TF traps through vector 1 after each instruction', () => {
    const { cpu, ram } = machine([
      0x9c, //                  pushf
      0x58, //                  pop ax
      0x89, 0xc3, //            mov bx, ax
      0x0d, ...w(TF), //        or ax, TF
      0x50, //                  push ax
      0x9d, //                  popf          ; TF on from here: trap after each instruction
      0x90, //                  nop           ; trap 1
      0x53, //                  push bx       ; trap 2
      0x9d, //                  popf          ; trap 3 (it began with TF set), TF now off
      HLT,
    ]);
    ram[CODE_SEG * 16 + 0x200] = 0x42; // isr: inc dx (runs with TF clear)
    ram[CODE_SEG * 16 + 0x201] = 0xcf; //      iret (restores TF)
    vector(ram, 1, 0x200);
    expect(cpu.run(100).reason).toBe('hlt');
    expect(cpu.regs[DX]).toBe(3);
  });
});

describe('memory through a P2M', () => {
  it('runs with guest frames scattered over a shared machine-memory buffer', () => {
    // 256 guest frames mapped to machine frames in reverse order in a SharedArrayBuffer, as the
    // hypervisor's P2M would hand them out; the guest must not notice.
    const machineMemory = new SharedArrayBuffer(256 * 4096);
    const pages = Array.from({ length: 256 }, (_, gfn) => new Uint8Array(machineMemory, (255 - gfn) * 4096, 4096));
    const cpu = new Cpu({ model: '80186', memory: { pages } });
    const poke = (lin: number, v: number): void => { pages[lin >>> 12][lin & 0xfff] = v; };
    const peek = (lin: number): number => pages[lin >>> 12][lin & 0xfff];
    const prog = [
      0xbe, ...w(0x0ff0), //    mov si, 0FF0h     ; source straddles a frame boundary
      0xbf, ...w(0x2ff8), //    mov di, 2FF8h     ; so does the destination
      0xb9, ...w(0x0010), //    mov cx, 16
      0xfc, //                  cld
      0xf3, 0xa5, //            rep movsw
      HLT,
    ];
    prog.forEach((b, i) => poke(CODE_SEG * 16 + CODE_IP + i, b));
    for (let i = 0; i < 32; i++) poke(DATA_SEG * 16 + 0x0ff0 + i, i + 1);
    cpu.sregs[CS] = CODE_SEG; cpu.ip = CODE_IP;
    cpu.sregs[DS] = DATA_SEG; cpu.sregs[ES] = DATA_SEG;
    expect(cpu.run(1000).reason).toBe('hlt');
    for (let i = 0; i < 32; i++) expect(peek(DATA_SEG * 16 + 0x2ff8 + i)).toBe(i + 1);
  });
});

describe('state', () => {
  it('reset puts CS:IP at F000:FFF0', () => {
    const { pages } = flatMemory(0x100000);
    const cpu = new Cpu({ model: '8086', memory: { pages } });
    expect(cpu.getState()).toMatchObject({ cs: 0xf000, ip: 0xfff0, ds: 0, flags: 0xf002, halted: false });
    expect(new Cpu({ model: '80186', memory: { pages } }).getFlags()).toBe(0x0002);
  });

  it('save/restore as JSON mid-program gives the same result as running straight through', () => {
    const prog = [
      0xb9, ...w(50), //        mov cx, 50
      0x31, 0xc0, //            xor ax, ax
      0x31, 0xdb, //            xor bx, bx
      0x01, 0xc8, //      l:    add ax, cx
      0x11, 0xcb, //            adc bx, cx
      0xd1, 0xe0, //            shl ax, 1
      0xe2, 0xf8, //            loop l
      HLT,
    ];
    const a = machine(prog);
    a.cpu.run(10000);
    const b = machine(prog);
    b.cpu.run(37);
    const saved = JSON.parse(JSON.stringify(b.cpu.getState()));
    const c = machine([]);
    c.ram.set(b.ram);
    c.cpu.setState(saved);
    c.cpu.run(10000);
    expect(c.cpu.getState()).toEqual(a.cpu.getState());
  });

  it('refuses a state from another model', () => {
    const a = machine([], { model: '8086' });
    const b = machine([], { model: '80186' });
    expect(() => b.cpu.setState(a.cpu.getState())).toThrow(/8086/);
  });

  it('exposes registers by name for the PV shim', () => {
    const { cpu } = machine([]);
    cpu.setReg('ax', 0x1234);
    cpu.setReg('dh', 0x56);
    cpu.setReg('es', 0x9000);
    expect(cpu.getReg('ah')).toBe(0x12);
    expect(cpu.regs[DX]).toBe(0x5600);
    expect(cpu.sregs[ES]).toBe(0x9000);
    expect(cpu.sregs[SS]).toBe(STACK_SEG);
    expect(cpu.sregs[CS]).toBe(CODE_SEG);
  });
});
