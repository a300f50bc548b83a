/**
 * The guest programs of guests/ booted UNMODIFIED as HVM guests. The disk exerciser
 * (guests/diskex.bin): the
 * virtual BIOS loads its boot sector, the sector loads the payload with INT 13h AH=02h, and every
 * INT 13h it makes runs the BIOS's ATA driver against qemu-dm's disk model. Its report must be
 * the same with PIO and with DMA, its self-checks must pass, and it must power off through APM.
 * (guests/ is another project's directory; this reads its checked-in image, nothing more.)
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MemoryBlockImage } from '../devices/memory.ts';
import { TestMachine } from './test-machine.ts';

const DISKEX = fileURLToPath(new URL('../../../guests/diskex.bin', import.meta.url));
const ECHO = fileURLToPath(new URL('../../../guests/echo.bin', import.meta.url));

/** diskex's checksum: sum = rol(sum, 1) + w over little-endian words, mod 2^16. */
function diskexSum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < bytes.length; i += 2) {
    sum = (((sum << 1) | (sum >>> 15)) & 0xffff) + (bytes[i] | (bytes[i + 1] << 8));
    sum &= 0xffff;
  }
  return sum;
}

function boot(dma: boolean, pioMultiple = false) {
  const bin = new Uint8Array(readFileSync(DISKEX));
  const disk = new MemoryBlockImage(8192);
  disk.bytes.set(bin, 0);
  const original = disk.bytes.slice();
  const m = new TestMachine({ disk, dma, pioMultiple });
  const r = m.run(20_000_000);
  const report = m.serial.split('Booting from hard disk...\r\n')[1] ?? '';
  const lines = new Map(
    report
      .split('\r\n')
      .filter((l) => l.length > 0)
      .map((l) => {
        const [name, ...kv] = l.split(' ');
        return [name, Object.fromEntries(kv.map((p) => p.split('=')))] as const;
      }),
  );
  return { m, r, report, lines, original, disk };
}

describe.skipIf(!existsSync(DISKEX))('guests/diskex.bin as an HVM guest', () => {
  it('runs to DONE and powers off, identically with PIO, PIO MULTIPLE and DMA, with correct checksums', () => {
    const pio = boot(false);
    const multiple = boot(false, true);
    const dma = boot(true);
    for (const run of [pio, multiple, dma]) {
      expect(run.r.reason).toBe('poweroff');
      expect(run.lines.has('DONE')).toBe(true);
      for (const [name, kv] of run.lines) {
        if (name === 'PAST42') expect(kv).toMatchObject({ CF: '01', AH: '04' });
        else if ('CF' in kv) expect(kv.CF, name).toBe('00');
      }
      // the same answers the PV path gives (guests/src/guests.test.ts pins them for PV)
      expect(run.lines.get('EXT41')).toEqual({ CF: '00', AH: '21', BX: 'AA55', CX: '0001' });
      expect(run.lines.get('GEOM08')).toEqual({ CF: '00', AH: '00', CYL: '0008', HEADS: '10', SPT: '3F', DRIVES: '01' });
      expect(run.lines.get('TYPE15')).toEqual({ CF: '00', AH: '03', SECTORS: '00002000' });
      expect(run.lines.get('PARAM48')).toEqual({ CF: '00', AH: '00', SECTORS: '00002000', BPS: '0200' });
      expect(run.lines.get('PAST42')).toEqual({ LBA: '00002000', N: '01', CF: '01', AH: '04' });
      expect(run.lines.get('STATUS01')).toEqual({ AH: '04' });
      expect(run.report).toMatch(/^VERIFY42 .* OK$/m);
      expect(run.report).toMatch(/^VERIFY02 .* OK$/m);
      const hex = (n: number) => n.toString(16).toUpperCase().padStart(4, '0');
      expect(run.lines.get('READ02')?.SUM).toBe(hex(diskexSum(run.original.subarray(0, 512))));
      // BIG42 runs after the writes to LBA 64-73: it sums the disk as it is at the end
      expect(run.lines.get('BIG42')?.SUM).toBe(hex(diskexSum(run.disk.bytes.subarray(0, 127 * 512))));
    }
    expect(dma.report).toBe(pio.report);
    expect(multiple.report).toBe(pio.report);
    expect(dma.m.platform.ata!.counters.dmaTransfers).toBeGreaterThan(0);
    expect(pio.m.platform.ata!.counters.dmaTransfers).toBe(0);
  });

  it('saved in the middle of its run and restored into a new machine, it finishes the same way', () => {
    const whole = boot(true);
    const bin = new Uint8Array(readFileSync(DISKEX));
    const diskA = new MemoryBlockImage(8192);
    diskA.bytes.set(bin, 0);
    const a = new TestMachine({ disk: diskA, dma: true });
    // stop part-way through the report, in the middle of the INT 13h checks
    expect(a.run(20_000_000, (m) => m.serial.includes('WRITE43')).reason).toBe('until');
    const snap = JSON.parse(JSON.stringify(a.snapshot()));
    const diskB = new MemoryBlockImage(diskA.bytes.slice()); // the disk travels separately, as in Xen
    const b = new TestMachine({ disk: diskB, dma: true });
    b.restore(snap);
    expect(b.run(20_000_000).reason).toBe('poweroff');
    expect(b.serial).toBe(whole.m.serial);
    // (Buffer.equals: vitest's deep equality is slow on a 4 MiB array)
    expect(Buffer.from(diskB.bytes).equals(Buffer.from(whole.disk.bytes))).toBe(true);
  });
});

describe.skipIf(!existsSync(ECHO))('guests/echo.bin as an HVM guest', () => {
  it('reads keys from the PS/2 keyboard through INT 16h, echoes them, reports and powers off', () => {
    const disk = new MemoryBlockImage(2048);
    disk.bytes.set(new Uint8Array(readFileSync(ECHO)), 0);
    const m = new TestMachine({ disk, instructionsPerTick: 20_000 });
    // it polls INT 16h AH=01h while the timer ticks: run until it has printed its first line
    m.run(5_000_000, (t) => t.serial.includes('EQUIP='));
    m.run(200_000);
    m.platform.kbc.pressKeys([0x23, 0xa3, 0x17, 0x97, 0x1c, 0x9c]); // h, i, Enter
    expect(m.run(5_000_000).reason).toBe('poweroff');
    const report = m.serial.split('Booting from hard disk...\r\n')[1];
    expect(report).toMatch(/^ECHO 1 MEM=027F EQUIP=0220\r\nKEY=2368\r\nKEY=1769\r\nKEY=1C0D\r\nLINE=hi\r\nTICKS=[0-9A-F]{8}\r\nDONE\r\n$/);
  });
});

