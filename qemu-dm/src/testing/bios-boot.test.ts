/**
 * Component tests: the virtual BIOS image running on @xenlab/x86-cpu, with every port and MMIO
 * exit completed by qemu-dm's device models (test-machine.ts). Each test boots a real machine
 * from the reset vector; budgets are in instructions, so nothing waits on wall-clock time.
 */
import { describe, expect, it } from 'vitest';
import { MemoryBlockImage } from '../devices/memory.ts';
import { SECTOR_SIZE } from '../devices/types.ts';
import { APM_SECTOR, CLOCK_SECTOR, DISK_SECTOR, HELLO_SECTOR, KEYS_SECTOR, SERIAL_SECTOR, SERVICES_SECTOR, bootSector } from './boot-sectors.ts';
import { TestMachine } from './test-machine.ts';

const BUDGET = 3_000_000;

/** A disk whose sector n starts with n (u32) and continues with a pattern derived from n. */
function patternDisk(sectors: number, boot?: Uint8Array): MemoryBlockImage {
  const img = new MemoryBlockImage(sectors);
  for (let n = 0; n < sectors; n++) {
    const s = img.bytes.subarray(n * SECTOR_SIZE, (n + 1) * SECTOR_SIZE);
    for (let i = 0; i < SECTOR_SIZE; i++) s[i] = (n * 7 + i * 13) & 0xff;
    new DataView(s.buffer, s.byteOffset).setUint32(0, n, true);
  }
  if (boot) img.bytes.set(boot, 0);
  return img;
}

function sector(img: MemoryBlockImage, lba: number, count = 1): Uint8Array {
  return img.bytes.slice(lba * SECTOR_SIZE, (lba + count) * SECTOR_SIZE);
}

describe('virtual BIOS on the x86 CPU', () => {
  it('POST sets up the machine and reaches INT 19h', () => {
    const m = new TestMachine({ disk: patternDisk(2048) });
    m.cpu.setInterruptExit(0x19, true);
    const r = m.run(BUDGET);
    expect(r.reason).toBe('interrupt-exit');
    expect(r.vector).toBe(0x19);
    expect(m.debugLog).toContain('POST done, INT 19h');
    // BIOS data area: COM1 at 3F8h, 639 KiB, EBDA segment 9FC0h, one hard disk, mode 3.
    const w = (a: number) => m.ram[a] | (m.ram[a + 1] << 8);
    expect(w(0x400)).toBe(0x3f8);
    expect(w(0x413)).toBe(639);
    expect(w(0x40e)).toBe(0x9fc0);
    expect(m.ram[0x475]).toBe(1);
    expect(m.ram[0x449]).toBe(3);
    expect(m.ram[0x9fc00]).toBe(1); // EBDA size in KiB
    // every IVT entry points into the BIOS, except INT 41h: the fixed disk table in the EBDA
    for (let v = 0; v < 256; v++) if (v !== 0x41) expect(w(v * 4 + 2), `vector ${v}`).toBe(0xf000);
    expect(w(0x41 * 4 + 2)).toBe(0x9fc0);
    const fdpt = 0x9fc00 + w(0x41 * 4);
    expect(w(fdpt)).toBe(2); // 2048 sectors / (16 heads * 63) → 2 cylinders
    expect(m.ram[fdpt + 2]).toBe(16);
    expect(m.ram[fdpt + 14]).toBe(63);
    expect(m.serial).toContain('xenlab virtual BIOS');
    expect(m.screen()[0]).toContain('xenlab virtual BIOS');
    expect(m.screen()[2]).toBe('Disk 80h: 2048 sectors, INT 13h via ATA PIO');
  });

  it('boots a sector that prints "hello" through INT 10h: on COM1 and in VGA text memory', () => {
    const m = new TestMachine({ disk: patternDisk(2048, HELLO_SECTOR) });
    const r = m.run(BUDGET);
    expect(r.reason).toBe('halted');
    expect(m.debugLog).toContain('jumping to the boot sector');
    expect(m.serial.endsWith('Booting from hard disk...\r\nhello\r\n')).toBe(true);
    const screen = m.screen();
    const row = screen.indexOf('hello');
    expect(row).toBeGreaterThan(0);
    expect(screen[row - 1]).toBe('Booting from hard disk...');
    // the hardware cursor follows the teletype output: start of the line after "hello"
    expect(m.platform.vga.cursor).toEqual({ row: row + 1, col: 0 });
    // text memory really holds character + attribute pairs
    expect(m.platform.vga.cell(row, 0)).toEqual({ char: 'h'.charCodeAt(0), attr: 0x07 });
  });

  for (const mode of ['PIO', 'PIO MULTIPLE', 'bus-master DMA'] as const) {
    const dma = mode === 'bus-master DMA';
    it(`INT 13h AH=02h/42h/43h read and write the disk (${mode})`, () => {
      const disk = patternDisk(2048, DISK_SECTOR);
      const m = new TestMachine({ disk, dma, pioMultiple: mode === 'PIO MULTIPLE' });
      const r = m.run(BUDGET);
      expect(r.reason).toBe('halted');
      expect(m.serial).toContain('disk ok');
      expect(m.ram[0x600]).toBe(0); // no failure status
      expect(m.ram[0x601]).toBe(0x04); // past the end: "sector not found" (ATA IDNF)
      // CHS 0/0/2, 4 sectors = LBA 1-4 at 0000:8000
      expect(m.ram.slice(0x8000, 0x8000 + 4 * SECTOR_SIZE)).toEqual(sector(disk, 1, 4));
      // LBA 100-107 at 1000:0000
      expect(m.ram.slice(0x10000, 0x10000 + 8 * SECTOR_SIZE)).toEqual(sector(disk, 100, 8));
      // AH=43h wrote LBA 1-2 (from 0000:8000) to LBA 200-201
      expect(sector(disk, 200, 2)).toEqual(patternDisk(2048).bytes.slice(1 * SECTOR_SIZE, 3 * SECTOR_SIZE));
      expect(m.platform.ata!.counters.dmaTransfers > 0).toBe(dma);
    });
  }

  it('counts exits per port for a disk read: PIO costs per sector (or per block), DMA a fixed number', () => {
    const measure = (opts: { dma?: boolean; pioMultiple?: boolean }) => {
      const m = new TestMachine({ disk: patternDisk(2048, DISK_SECTOR), ...opts });
      expect(m.run(BUDGET).reason).toBe('halted');
      expect(m.serial).toContain('disk ok');
      return { chs4: m.exitsBetween(1, 2), lba8: m.exitsBetween(2, 3) };
    };
    const pio = measure({});
    const multiple = measure({ pioMultiple: true });
    const dma = measure({ dma: true });
    // PIO: one status poll and one `rep insw` (a single exit with a count) per sector.
    expect(pio.lba8.ports['pio:1f0']).toBe(8);
    expect(pio.chs4.ports['pio:1f0']).toBe(4);
    const perSectorPio = (pio.lba8.exits - pio.chs4.exits) / 4;
    expect(perSectorPio).toBe(2);
    // READ MULTIPLE: one poll and one `rep insw` per block of up to 16 sectors.
    expect(multiple.lba8.ports['pio:1f0']).toBe(1);
    expect(multiple.lba8.exits).toBe(multiple.chs4.exits);
    // DMA: the same number of exits whatever the length; no data-port exits at all.
    expect(dma.lba8.ports['pio:1f0']).toBeUndefined();
    expect(dma.lba8.exits).toBe(dma.chs4.exits);
    expect(dma.lba8.exits).toBeLessThan(pio.lba8.exits);
    expect(dma.lba8.ports['pio:c000']).toBe(3); // stop, start, stop
    // each count includes the guest's one marker OUT to port 80h
    expect([pio.lba8.exits - 1, multiple.lba8.exits - 1, dma.lba8.exits - 1]).toEqual([23, 9, 15]);
    console.log(
      `exits for INT 13h reads (each figure includes one port-80h marker):\n` +
        `  PIO           4 sectors (AH=02h): ${pio.chs4.exits}, 8 sectors (AH=42h): ${pio.lba8.exits} → ${perSectorPio} per 512-byte sector + fixed cost\n` +
        `  PIO MULTIPLE  4 sectors (AH=02h): ${multiple.chs4.exits}, 8 sectors (AH=42h): ${multiple.lba8.exits} → 2 per 16-sector block\n` +
        `  DMA           4 sectors (AH=02h): ${dma.chs4.exits}, 8 sectors (AH=42h): ${dma.lba8.exits} → 0 per sector\n` +
        `  PIO ports (8 sectors): ${JSON.stringify(pio.lba8.ports)}\n  DMA ports (8 sectors): ${JSON.stringify(dma.lba8.ports)}`,
    );
  });

  it('a disk without the 55AA signature gets a clear console message and the guest halts', () => {
    const noSig = bootSector(Array.from(HELLO_SECTOR.subarray(0, 510)), false);
    const m = new TestMachine({ disk: patternDisk(2048, noSig) });
    const r = m.run(BUDGET);
    expect(r.reason).toBe('halted');
    expect(m.serial).toContain('No bootable disk: the boot sector has no 55AA signature.');
    expect(m.serial).toContain('System halted.');
    expect(m.screen().join('\n')).toContain('No bootable disk: the boot sector has no 55AA signature.');
    expect(m.serial).not.toContain('hello');
    // it stays halted: more budget does not wake it
    expect(m.run(100_000).reason).toBe('halted');
  });

  it('APM power-off (INT 15h AX=5307h) reaches the PM1a power-off port', () => {
    const m = new TestMachine({ disk: patternDisk(2048, APM_SECTOR) });
    const r = m.run(BUDGET);
    expect(r.reason).toBe('poweroff');
    expect(m.platform.power.poweredOff).toBe(true);
    expect(m.debugLog).toContain('APM power off');
    expect(m.platform.bus.portStats()['pio:b004']?.writes).toBe(1);
  });

  it('keyboard: scancodes → IRQ 1 → INT 09h → INT 16h, echoed through INT 10h', () => {
    const m = new TestMachine({ disk: patternDisk(2048, KEYS_SECTOR) });
    // the program waits in INT 16h (STI; HLT) for a key
    expect(m.run(BUDGET).reason).toBe('halted');
    expect(m.serial.endsWith('Booting from hard disk...\r\n')).toBe(true);
    // "Hi" typed with left shift held for the H, then a grey cursor key preceded by a fake
    // shift (E0 2A E0 48 E0 C8, as keyboards send with NumLock on): not a real Shift press
    m.platform.kbc.pressKeys([0x2a, 0x23, 0xa3, 0xaa, 0x17, 0x97, 0xe0, 0x2a, 0xe0, 0x48, 0xe0, 0xc8]);
    expect(m.run(BUDGET).reason).toBe('halted');
    expect(m.serial.endsWith('Hi\0')).toBe(true); // the cursor key echoes as ASCII 0 (AH=00h)
    m.platform.kbc.pressKeys([0x1c, 0x9c]);
    expect(m.run(BUDGET).reason).toBe('halted');
    expect(m.cpu.getFlags() & 0x200).toBe(0); // the program's final CLI; HLT
    expect(m.ram[0x600] & 0x03).toBe(0); // no Shift held: the fake shift was ignored
    expect(m.screen().some((l) => l.startsWith('Hi'))).toBe(true);
  });

  it('timer ticks (INT 08h), the RTC (INT 1Ah) and INT 11h/12h', () => {
    const when = Date.UTC(2026, 10, 21, 14, 37, 5);
    const m = new TestMachine({ disk: patternDisk(2048, CLOCK_SECTOR), instructionsPerTick: 5000, clock: () => when });
    const r = m.run(BUDGET);
    expect(r.reason).toBe('halted');
    const w = (a: number) => m.ram[a] | (m.ram[a + 1] << 8);
    const before = w(0x600);
    const after = w(0x602);
    expect(after - before).toBeGreaterThanOrEqual(3);
    // POST set the tick count from the RTC: 14:37:05 is about 14*65543 + 37*1092 + 5*18.2 ticks
    const expected = 14 * 65543 + 37 * 1092 + 91;
    const ticks = (m.ram[0x46c] | (m.ram[0x46d] << 8) | (m.ram[0x46e] << 16)) >>> 0;
    expect(Math.abs(ticks - expected)).toBeLessThan(200);
    expect(w(0x604)).toBe(0x1437); // CH = 14h, CL = 37h (BCD)
    expect(m.ram[0x607]).toBe(0x05); // DH = seconds
    expect(w(0x608)).toBe(0x2026); // century 20h, year 26h
    expect(w(0x60a)).toBe(0x1121); // month 11h, day 21h
    // INT 15h AH=86h: 65536 µs is 1.2 ticks, rounded up to 2
    expect(m.ram[0x611]).toBe(0);
    expect(w(0x612) - after).toBeGreaterThanOrEqual(2);
    // INT 1Ah AH=03h/05h set the RTC; AH=02h/04h read it back
    expect(w(0x614)).toBe(0x0915);
    expect(m.ram[0x617]).toBe(0x30);
    expect(w(0x618)).toBe(0x1999);
    expect(w(0x61a)).toBe(0x1231);
    expect(w(0x60c)).toBe(639);
    expect(w(0x60e)).toBe(0x0220);
  });

  for (const dma of [false, true]) {
    it(`INT 10h/13h/14h/15h services answer as documented (${dma ? 'DMA' : 'PIO'})`, () => {
      const disk = patternDisk(20 * 16 * 63, SERVICES_SECTOR);
      const m = new TestMachine({ disk, dma });
      expect(m.run(BUDGET * 3).reason).toBe('halted');
      expect(m.markers.map((k) => k.value)).toEqual([1]);
      const w = (a: number) => m.ram[a] | (m.ram[a + 1] << 8);
      const d = (a: number) => (w(a) | (w(a + 2) << 16)) >>> 0;
      // AH=08h: 20 cylinders (max 19), 63 sectors, 16 heads (max 15), one drive
      expect(w(0x600)).toBe(0x133f);
      expect(w(0x602)).toBe(0x0f01);
      // AH=15h: fixed disk with 20160 sectors
      expect(m.ram[0x604]).toBe(3);
      expect((w(0x606) << 16) | w(0x608)).toBe(20160);
      // AH=41h: EDD 1.1, extended functions supported
      expect(w(0x60a)).toBe(0xaa55);
      expect(m.ram[0x60d]).toBe(0x21);
      expect(w(0x60e)).toBe(0x0001);
      // AH=48h
      expect([w(0x700), w(0x702), d(0x704), d(0x708), d(0x70c), d(0x710), d(0x714), w(0x718)]).toEqual([0x1a, 2, 20, 16, 63, 20160, 0, 512]);
      // drive 81h and a zero-sector read fail with AH=01h; AH=01h then reports 01h
      expect(w(0x610)).toBe(0x01ff);
      expect(w(0x612)).toBe(0x01ff);
      expect(m.ram[0x615]).toBe(0x01);
      // AH=42h into 0000:FE00 (crosses 64 KiB: two PRD entries under DMA)
      expect(w(0x616)).toBe(0);
      expect(m.ram.slice(0xfe00, 0xfe00 + 1024)).toEqual(sector(disk, 10, 2));
      if (dma) {
        // the BIOS's PRD table in the EBDA (9FC0:0040): split at 10000h, end-of-table on the second
        const prd = 0x9fc40;
        expect([d(prd), w(prd + 4), w(prd + 6), d(prd + 8), w(prd + 12), w(prd + 14)]).toEqual([0xfe00, 0x200, 0, 0x10000, 0x200, 0x8000]);
      }
      // AH=03h wrote them back at CHS 0/2/1 = LBA 126
      expect(w(0x628)).toBe(0);
      expect(sector(disk, 126, 2)).toEqual(patternDisk(20 * 16 * 63).bytes.slice(10 * SECTOR_SIZE, 12 * SECTOR_SIZE));
      // INT 16h: stuffed key is seen by peek (ZF clear) and read
      expect(m.ram[0x62a]).toBe(0);
      expect(m.ram[0x62c]).toBe(0x61);
      expect(m.ram[0x62d] & 0x40).toBe(0);
      expect(w(0x62e)).toBe(0x1e61);
      // INT 15h: no extended memory; E820 map; configuration table at F000:xxxx
      expect(w(0x618)).toBe(0);
      expect(m.ram[0x61a]).toBe(3);
      const e820 = [0, 1, 2].map((i) => [d(0x800 + i * 20), d(0x800 + i * 20 + 8), d(0x800 + i * 20 + 16)]);
      expect(e820).toEqual([[0, 0x9fc00, 1], [0x9fc00, 0x400, 2], [0xf0000, 0x10000, 2]]);
      expect(w(0x61e)).toBe(0xf000);
      const cfg = 0xf0000 + w(0x61c);
      expect([w(cfg), m.ram[cfg + 2]]).toEqual([8, 0xfc]);
      // INT 10h: cursor after the write string, mode 3 / 80 columns, the scrolled window
      expect(w(0x620)).toBe(0x0a08);
      expect(w(0x622)).toBe(0x5003);
      const screen = m.screen();
      expect(screen[10]).toBe('');
      expect(screen[11]).toBe('XXX');
      expect(m.platform.vga.cell(11, 0).attr).toBe(0x4f);
      expect(m.platform.vga.cell(12, 0)).toEqual({ char: 0x20, attr: 0x70 });
      expect(m.serial).toContain('STR');
      // INT 14h: line status THRE|TEMT, modem status CTS|DSR|DCD; then 'S' on the wire
      expect(w(0x624)).toBe(0x60b0);
      expect(m.ram[0x626]).toBe(0x60);
      expect(m.serial.endsWith('S')).toBe(true);
    });
  }

  it('no disk at all: the IDE ports float, POST finds no drive, INT 19h halts with a message', () => {
    const m = new TestMachine({ disk: null });
    expect(m.run(BUDGET).reason).toBe('halted');
    expect(m.debugLog).toContain('no ATA disk on the primary channel');
    expect(m.ram[0x475]).toBe(0);
    expect(m.serial).not.toContain('Disk 80h');
    expect(m.serial).toContain('No bootable device: there is no hard disk.\r\nSystem halted.');
  });

  it('an empty disk image (0 sectors): the boot sector cannot be read', () => {
    const m = new TestMachine({ disk: new MemoryBlockImage(0) });
    expect(m.run(BUDGET).reason).toBe('halted');
    expect(m.serial).toContain('Disk 80h: 0 sectors');
    expect(m.serial).toContain('Boot failed: could not read the boot sector.');
  });

  it('the same disk boot through real ioreq_t slots gives the same result and exit counts', () => {
    const direct = new TestMachine({ disk: patternDisk(2048, DISK_SECTOR), dma: true });
    const paged = new TestMachine({ disk: patternDisk(2048, DISK_SECTOR), dma: true, ioreqPage: true });
    expect(direct.run(BUDGET).reason).toBe('halted');
    expect(paged.run(BUDGET).reason).toBe('halted');
    expect(paged.serial).toBe(direct.serial);
    expect(paged.exitsBetween(2, 3)).toEqual(direct.exitsBetween(2, 3));
    expect(paged.ioreqCounters.served).toBe(paged.exits.io + paged.exits.mmio - [...paged.exits.byPort].filter(([k]) => /^pio:(20|21|a0|a1|4[0-3]|61|80)$/.test(k)).reduce((n, [, v]) => n + v, 0));
    expect(paged.ioreqCounters.malformed).toBe(0);
  });

  it('INT 14h: init, receive, time-out and send on COM1', () => {
    const m = new TestMachine({ disk: patternDisk(2048, SERIAL_SECTOR) });
    expect(m.run(BUDGET, (t) => t.markers.length > 0).reason).toBe('until');
    expect(m.platform.com1.divisor).toBe(12); // 115200 / 12 = 9600 baud
    expect(m.platform.bus.in(0x3fb, 1)).toBe(0x03);
    const w = (a: number) => m.ram[a] | (m.ram[a + 1] << 8);
    expect(m.ram[0x601] & 0x60).toBe(0x60); // line status: transmitter empty
    m.platform.com1.receive([0x41]);
    expect(m.run(BUDGET * 2).reason).toBe('halted');
    expect(w(0x602)).toBe(0x0041); // AL = 'A', AH = 0: no error
    expect(m.ram[0x605] & 0x80).toBe(0x80); // time-out
    expect(m.serial.endsWith('B')).toBe(true);
  });
});

