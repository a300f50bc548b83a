import { describe, expect, it } from 'vitest';
import { ATA_ER, ATA_SR, AtaController, BM_ST } from './ata.ts';
import { FlatDmaMemory, MemoryBlockImage } from './memory.ts';
import { IoBus } from './io-bus.ts';
import { SECTOR_SIZE } from './types.ts';

const CMD = 0x1f0, CTL = 0x3f6, BM = 0xc000;

function setup(opts: { sectors?: number; readOnly?: boolean } = {}) {
  const image = new MemoryBlockImage(opts.sectors ?? 4096, opts.readOnly ?? false);
  for (let i = 0; i < image.bytes.length; i++) image.bytes[i] = (i * 31 + (i >> 9)) & 0xff;
  const ram = new Uint8Array(0x40000);
  const mem = new FlatDmaMemory(ram);
  const irqs: boolean[] = [];
  const ata = new AtaController({ image, dma: mem, irq: (l) => irqs.push(l) });
  const bus = new IoBus();
  bus.mapPorts(CMD, 8, ata.commandBlock);
  bus.mapPorts(CTL, 1, ata.control);
  bus.mapPorts(BM, 8, ata.busMaster);
  const rising = () => irqs.filter((l) => l).length;
  const taskFile = (lba: number, count: number, lbaMode = true) => {
    bus.out(CMD + 6, 1, (lbaMode ? 0xe0 : 0xa0) | ((lba >>> 24) & 0x0f));
    bus.out(CMD + 2, 1, count);
    bus.out(CMD + 3, 1, lba & 0xff);
    bus.out(CMD + 4, 1, (lba >>> 8) & 0xff);
    bus.out(CMD + 5, 1, (lba >>> 16) & 0xff);
  };
  const readWords = (n: number) => {
    const out = new Uint8Array(n * 2);
    for (let i = 0; i < n; i++) {
      const w = bus.in(CMD, 2);
      out[i * 2] = w & 0xff;
      out[i * 2 + 1] = w >> 8;
    }
    return out;
  };
  const status = () => bus.in(CMD + 7, 1);
  return { image, ram, mem, ata, bus, irqs, rising, taskFile, readWords, status };
}

describe('ATA/IDE: PIO', () => {
  it('IDENTIFY DEVICE returns 256 words describing the disk and interrupts once', () => {
    const t = setup({ sectors: 100_000 });
    t.bus.out(CMD + 7, 1, 0xec);
    expect(t.status() & (ATA_SR.DRQ | ATA_SR.DRDY | ATA_SR.BSY | ATA_SR.ERR)).toBe(ATA_SR.DRQ | ATA_SR.DRDY);
    expect(t.rising()).toBe(1);
    const id = new DataView(t.readWords(256).buffer);
    const w = (i: number) => id.getUint16(i * 2, true);
    expect(w(0)).toBe(0x0040);
    expect(w(60) | (w(61) << 16)).toBe(100_000);
    expect(w(47) & 0xff).toBe(16);
    expect(w(49) & 0x0300).toBe(0x0300); // LBA and DMA
    expect(w(3)).toBe(16);
    expect(w(6)).toBe(63);
    expect(w(1)).toBe(Math.floor(100_000 / (16 * 63)));
    // ATA strings are big-endian within each word
    let model = '';
    for (let i = 27; i < 47; i++) model += String.fromCharCode(w(i) >> 8, w(i) & 0xff);
    expect(model.trim()).toBe('XENLAB HARDDISK');
    expect(t.status() & (ATA_SR.DRQ | ATA_SR.DRDY)).toBe(ATA_SR.DRDY);
  });

  it('reading Status acknowledges the interrupt; Alternate Status does not', () => {
    const t = setup();
    t.bus.out(CMD + 7, 1, 0xec);
    expect(t.ata.irqAsserted).toBe(true);
    t.bus.in(CTL, 1);
    expect(t.ata.irqAsserted).toBe(true);
    t.status();
    expect(t.ata.irqAsserted).toBe(false);
  });

  it('READ SECTORS in LBA28 mode: one DRQ block and one interrupt per sector', () => {
    const t = setup();
    t.taskFile(1000, 3);
    t.bus.out(CMD + 7, 1, 0x20);
    const data = new Uint8Array(3 * SECTOR_SIZE);
    for (let s = 0; s < 3; s++) {
      expect(t.status() & ATA_SR.DRQ).toBe(ATA_SR.DRQ);
      data.set(t.readWords(256), s * SECTOR_SIZE);
    }
    expect(data).toEqual(t.image.read(1000, 3));
    expect(t.rising()).toBe(3);
    expect(t.status()).toBe(ATA_SR.DRDY | ATA_SR.DSC);
    // the address registers hold the last sector transferred
    expect(t.bus.in(CMD + 3, 1) | (t.bus.in(CMD + 4, 1) << 8)).toBe(1002);
  });

  it('sector count 0 means 256 sectors', () => {
    const t = setup();
    t.taskFile(0, 0);
    t.bus.out(CMD + 7, 1, 0x20);
    const all = t.bus.handle({ space: 'pio', dir: 'read', addr: CMD, size: 2, count: 256 * 256, dataIsPtr: true, df: false, data: 0 }, t.mem);
    expect(all).toBe(65536);
    expect(Buffer.from(t.ram.subarray(0, 256 * SECTOR_SIZE)).equals(t.image.read(0, 256))).toBe(true);
    expect(t.status() & ATA_SR.DRQ).toBe(0);
  });

  it('CHS addressing uses the current geometry (16 heads, 63 sectors)', () => {
    const t = setup();
    // cylinder 2, head 3, sector 5 → (2*16+3)*63 + 4 = 2209
    t.bus.out(CMD + 6, 1, 0xa0 | 3);
    t.bus.out(CMD + 2, 1, 1);
    t.bus.out(CMD + 3, 1, 5);
    t.bus.out(CMD + 4, 1, 2);
    t.bus.out(CMD + 5, 1, 0);
    t.bus.out(CMD + 7, 1, 0x20);
    expect(t.readWords(256)).toEqual(t.image.read(2209, 1));
    // sector 0 does not exist in CHS
    t.bus.out(CMD + 3, 1, 0);
    t.bus.out(CMD + 7, 1, 0x20);
    expect(t.status() & ATA_SR.ERR).toBe(ATA_SR.ERR);
    expect(t.bus.in(CMD + 1, 1)).toBe(ATA_ER.IDNF);
  });

  it('INITIALIZE DEVICE PARAMETERS changes the CHS translation', () => {
    const t = setup();
    t.bus.out(CMD + 6, 1, 0xa0 | 7); // 8 heads
    t.bus.out(CMD + 2, 1, 32); // 32 sectors per track
    t.bus.out(CMD + 7, 1, 0x91);
    expect(t.status() & ATA_SR.ERR).toBe(0);
    t.bus.out(CMD + 6, 1, 0xa0 | 1);
    t.bus.out(CMD + 2, 1, 1);
    t.bus.out(CMD + 3, 1, 1);
    t.bus.out(CMD + 4, 1, 1);
    t.bus.out(CMD + 5, 1, 0);
    t.bus.out(CMD + 7, 1, 0x20);
    expect(t.readWords(256)).toEqual(t.image.read((1 * 8 + 1) * 32, 1)); // 288
  });

  it('WRITE SECTORS: DRQ without an interrupt for the first block, an interrupt after each', () => {
    const t = setup();
    t.taskFile(50, 2);
    t.bus.out(CMD + 7, 1, 0x30);
    expect(t.status() & ATA_SR.DRQ).toBe(ATA_SR.DRQ);
    expect(t.rising()).toBe(0);
    for (let i = 0; i < 256; i++) t.bus.out(CMD, 2, 0x1111);
    expect(t.rising()).toBe(1);
    t.status();
    for (let i = 0; i < 256; i++) t.bus.out(CMD, 2, 0x2222);
    expect(t.rising()).toBe(2);
    expect(t.status()).toBe(ATA_SR.DRDY | ATA_SR.DSC);
    expect(t.image.read(50, 1).every((b) => b === 0x11)).toBe(true);
    expect(t.image.read(51, 1).every((b) => b === 0x22)).toBe(true);
    expect(t.ata.counters.sectorsWritten).toBe(2);
  });

  it('READ/WRITE MULTIPLE need SET MULTIPLE MODE with a power of two up to 16', () => {
    const t = setup();
    t.taskFile(0, 10);
    t.bus.out(CMD + 7, 1, 0xc4);
    expect(t.bus.in(CMD + 1, 1)).toBe(ATA_ER.ABRT);
    t.bus.out(CMD + 2, 1, 3);
    t.bus.out(CMD + 7, 1, 0xc6);
    expect(t.status() & ATA_SR.ERR).toBe(ATA_SR.ERR);
    t.bus.out(CMD + 2, 1, 32);
    t.bus.out(CMD + 7, 1, 0xc6);
    expect(t.status() & ATA_SR.ERR).toBe(ATA_SR.ERR);
    t.bus.out(CMD + 2, 1, 4);
    t.bus.out(CMD + 7, 1, 0xc6);
    expect(t.status() & ATA_SR.ERR).toBe(0);
    t.irqs.length = 0;
    t.taskFile(20, 10);
    t.bus.out(CMD + 7, 1, 0xc4);
    // one DRQ block per `rep insw`, acknowledging the interrupt in between as a driver does
    let at = 0x1000;
    for (const sectors of [4, 4, 2]) {
      expect(t.status() & ATA_SR.DRQ).toBe(ATA_SR.DRQ);
      t.bus.handle({ space: 'pio', dir: 'read', addr: CMD, size: 2, count: sectors * 256, dataIsPtr: true, df: false, data: at }, t.mem);
      at += sectors * SECTOR_SIZE;
    }
    expect(t.ram.subarray(0x1000, 0x1000 + 10 * SECTOR_SIZE)).toEqual(t.image.read(20, 10));
    expect(t.rising()).toBe(3); // blocks of 4, 4 and 2 sectors
    // WRITE MULTIPLE: one interrupt per block
    t.irqs.length = 0;
    t.taskFile(30, 8);
    t.bus.out(CMD + 7, 1, 0xc5);
    t.bus.handle({ space: 'pio', dir: 'write', addr: CMD, size: 2, count: 4 * 256, dataIsPtr: true, df: false, data: 0x1000 }, t.mem);
    t.status();
    t.bus.handle({ space: 'pio', dir: 'write', addr: CMD, size: 2, count: 4 * 256, dataIsPtr: true, df: false, data: 0x1800 }, t.mem);
    expect(t.rising()).toBe(2);
    expect(t.image.read(30, 8)).toEqual(t.ram.slice(0x1000, 0x1000 + 8 * SECTOR_SIZE));
    // IDENTIFY word 59 reports the setting
    t.bus.out(CMD + 7, 1, 0xec);
    const id = t.readWords(256);
    expect(id[59 * 2] | (id[59 * 2 + 1] << 8)).toBe(0x0104);
  });

  it('addresses past the end of the disk: ERR with IDNF, an interrupt, no data', () => {
    const t = setup({ sectors: 100 });
    t.taskFile(99, 2);
    t.bus.out(CMD + 7, 1, 0x20);
    expect(t.status()).toBe(ATA_SR.DRDY | ATA_SR.DSC | ATA_SR.ERR);
    expect(t.bus.in(CMD + 1, 1)).toBe(ATA_ER.IDNF);
    expect(t.rising()).toBe(1);
    expect(t.bus.in(CMD, 2)).toBe(0);
    t.taskFile(0x0fffffff, 1);
    t.bus.out(CMD + 7, 1, 0x30);
    expect(t.bus.in(CMD + 1, 1)).toBe(ATA_ER.IDNF);
    t.taskFile(99, 1);
    t.bus.out(CMD + 7, 1, 0x20);
    expect(t.status() & ATA_SR.ERR).toBe(0);
  });

  it('unknown and garbage commands abort with ERR + ABRT and leave the drive usable', () => {
    const t = setup();
    for (const cmd of [0x00, 0x01, 0x08, 0x50, 0xa0, 0xa1, 0xff, 0xef]) {
      t.bus.out(CMD + 1, 1, 0x77); // SET FEATURES subcommand 77h does not exist either
      t.bus.out(CMD + 7, 1, cmd);
      expect(t.status(), `command ${cmd.toString(16)}`).toBe(ATA_SR.DRDY | ATA_SR.DSC | ATA_SR.ERR);
      expect(t.bus.in(CMD + 1, 1)).toBe(ATA_ER.ABRT);
    }
    t.taskFile(1, 1);
    t.bus.out(CMD + 7, 1, 0x20);
    expect(t.readWords(256)).toEqual(t.image.read(1, 1));
  });

  it('data-port reads and writes with nothing pending give 0 and are ignored', () => {
    const t = setup();
    expect(t.bus.in(CMD, 2)).toBe(0);
    t.bus.out(CMD, 2, 0x1234);
    const r = t.bus.handle({ space: 'pio', dir: 'read', addr: CMD, size: 2, count: 100, dataIsPtr: true, df: false, data: 0x100 }, t.mem);
    expect(r).toBe(100);
    expect(t.ram.subarray(0x100, 0x100 + 200).every((b) => b === 0)).toBe(true);
    expect(t.ata.counters.ignored).toBe(102);
    expect(t.status()).toBe(ATA_SR.DRDY | ATA_SR.DSC);
  });

  it('a rep insw longer than the transfer gets the data, then zeros', () => {
    const t = setup();
    t.taskFile(7, 1);
    t.bus.out(CMD + 7, 1, 0x20);
    t.bus.handle({ space: 'pio', dir: 'read', addr: CMD, size: 2, count: 300, dataIsPtr: true, df: false, data: 0 }, t.mem);
    expect(t.ram.subarray(0, 512)).toEqual(t.image.read(7, 1));
    expect(t.ram.subarray(512, 600).every((b) => b === 0)).toBe(true);
  });

  it('nIEN keeps the interrupt line low', () => {
    const t = setup();
    t.bus.out(CTL, 1, 0x02);
    t.bus.out(CMD + 7, 1, 0xec);
    expect(t.rising()).toBe(0);
    expect(t.bus.in(BM + 2, 1) & BM_ST.INTERRUPT).toBe(0);
    // clearing nIEN with the interrupt still pending raises the line
    t.bus.out(CTL, 1, 0x00);
    expect(t.rising()).toBe(1);
  });

  it('software reset: BSY while SRST is set, then the signature and error 01h', () => {
    const t = setup();
    t.taskFile(5, 2);
    t.bus.out(CMD + 7, 1, 0x20);
    t.bus.out(CTL, 1, 0x04);
    expect(t.bus.in(CTL, 1) & ATA_SR.BSY).toBe(ATA_SR.BSY);
    t.bus.out(CMD + 7, 1, 0x20); // ignored while busy
    t.bus.out(CTL, 1, 0x00);
    expect(t.status()).toBe(ATA_SR.DRDY | ATA_SR.DSC);
    expect(t.bus.in(CMD + 1, 1)).toBe(0x01);
    expect([2, 3, 4, 5].map((o) => t.bus.in(CMD + o, 1))).toEqual([1, 1, 0, 0]);
    expect(t.bus.in(CMD, 2)).toBe(0); // the aborted transfer is gone
  });

  it('device 1 is absent: its status reads 0 and commands to it are ignored', () => {
    const t = setup();
    t.bus.out(CMD + 6, 1, 0xb0);
    expect(t.status()).toBe(0);
    expect(t.bus.in(CTL, 1)).toBe(0);
    t.bus.out(CMD + 7, 1, 0xec);
    expect(t.rising()).toBe(0);
    t.bus.out(CMD + 6, 1, 0xa0);
    expect(t.status() & ATA_SR.DRQ).toBe(0);
  });

  it('a read-only image refuses writes with ABRT', () => {
    const t = setup({ readOnly: true });
    t.taskFile(0, 1);
    t.bus.out(CMD + 7, 1, 0x30);
    expect(t.bus.in(CMD + 1, 1)).toBe(ATA_ER.ABRT);
  });

  it('random port traffic never throws and the drive still reads correctly afterwards', () => {
    const t = setup({ sectors: 64 });
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16);
    for (let i = 0; i < 20_000; i++) {
      const which = rnd() % 3;
      const port = which === 0 ? CMD + (rnd() % 8) : which === 1 ? CTL : BM + (rnd() % 8);
      const size = ([1, 2, 4] as const)[rnd() % 3];
      if (rnd() & 1) t.bus.in(port, size, t.mem);
      else t.bus.out(port, size, rnd() * 65536 + rnd(), t.mem);
    }
    t.bus.out(CTL, 1, 0x04);
    t.bus.out(CTL, 1, 0x00);
    t.taskFile(3, 1);
    t.bus.out(CMD + 7, 1, 0x20);
    expect(t.readWords(256)).toEqual(t.image.read(3, 1));
  });

  it('snapshot mid-transfer and restore into a fresh controller continues the transfer', () => {
    const t = setup();
    t.taskFile(40, 2);
    t.bus.out(CMD + 7, 1, 0x20);
    const first = t.readWords(100);
    const snap = JSON.parse(JSON.stringify(t.ata.snapshot()));
    const u = setup();
    u.ata.restore(snap);
    const rest = u.readWords(412);
    const all = new Uint8Array(1024);
    all.set(first);
    all.set(rest, 200);
    expect(all).toEqual(t.image.read(40, 2));
  });
});

describe('ATA/IDE: bus-master DMA', () => {
  function prd(t: ReturnType<typeof setup>, at: number, entries: [number, number, boolean][]) {
    const dv = new DataView(t.ram.buffer);
    entries.forEach(([addr, len, eot], i) => {
      dv.setUint32(at + i * 8, addr, true);
      dv.setUint16(at + i * 8 + 4, len, true);
      dv.setUint16(at + i * 8 + 6, eot ? 0x8000 : 0, true);
    });
    t.bus.out(BM + 4, 2, at & 0xffff);
    t.bus.out(BM + 6, 2, at >>> 16);
  }

  it('READ DMA scatters the sectors into the PRD regions in one go', () => {
    const t = setup();
    prd(t, 0x100, [[0x2000, 1024, false], [0x8000, 512, true]]);
    t.taskFile(300, 3);
    t.bus.out(CMD + 7, 1, 0xc8);
    expect(t.ram.subarray(0x2000, 0x2400).every((b) => b === 0)).toBe(true); // waits for the bus master
    t.bus.out(BM, 1, 0x09);
    const data = t.image.read(300, 3);
    expect(t.ram.subarray(0x2000, 0x2400)).toEqual(data.subarray(0, 1024));
    expect(t.ram.subarray(0x8000, 0x8200)).toEqual(data.subarray(1024));
    expect(t.bus.in(BM + 2, 1) & (BM_ST.ACTIVE | BM_ST.INTERRUPT | BM_ST.ERROR)).toBe(BM_ST.INTERRUPT);
    expect(t.rising()).toBe(1);
    expect(t.status()).toBe(ATA_SR.DRDY | ATA_SR.DSC);
    // interrupt bit is write-1-to-clear
    t.bus.out(BM + 2, 1, BM_ST.INTERRUPT);
    expect(t.bus.in(BM + 2, 1) & BM_ST.INTERRUPT).toBe(0);
  });

  it('WRITE DMA gathers from memory; starting the engine first also works', () => {
    const t = setup();
    t.ram.fill(0x5a, 0x3000, 0x3400);
    prd(t, 0x200, [[0x3000, 1024, true]]);
    t.bus.out(BM, 1, 0x01);
    t.taskFile(10, 2);
    t.bus.out(CMD + 7, 1, 0xca);
    expect(t.image.read(10, 2).every((b) => b === 0x5a)).toBe(true);
    expect(t.ata.counters.dmaTransfers).toBe(1);
  });

  it('a PRD table outside guest RAM: bus-master error, ERR + ABRT, an interrupt', () => {
    const t = setup();
    prd(t, 0x100, []);
    t.bus.out(BM + 4, 2, 0);
    t.bus.out(BM + 6, 2, 0x7000); // 7000_0000h: no RAM there
    t.taskFile(0, 1);
    t.bus.out(CMD + 7, 1, 0xc8);
    t.bus.out(BM, 1, 0x09);
    expect(t.bus.in(BM + 2, 1) & (BM_ST.ERROR | BM_ST.ACTIVE)).toBe(BM_ST.ERROR);
    expect(t.status() & ATA_SR.ERR).toBe(ATA_SR.ERR);
    expect(t.bus.in(CMD + 1, 1)).toBe(ATA_ER.ABRT);
    expect(t.rising()).toBe(1);
  });

  it('a PRD region outside guest RAM: the same error, no host exception', () => {
    const t = setup();
    prd(t, 0x100, [[0xfffff000, 8192, true]]);
    t.taskFile(0, 16);
    t.bus.out(CMD + 7, 1, 0xc8);
    t.bus.out(BM, 1, 0x09);
    expect(t.bus.in(BM + 2, 1) & BM_ST.ERROR).toBe(BM_ST.ERROR);
    expect(t.bus.in(CMD + 1, 1)).toBe(ATA_ER.ABRT);
  });

  it('PRD regions smaller than the transfer: engine stops with Interrupt=0, drive keeps DRQ', () => {
    const t = setup();
    prd(t, 0x100, [[0x2000, 512, true]]);
    t.taskFile(0, 2);
    t.bus.out(CMD + 7, 1, 0xc8);
    t.bus.out(BM, 1, 0x09);
    expect(t.bus.in(BM + 2, 1) & (BM_ST.ACTIVE | BM_ST.INTERRUPT)).toBe(0);
    expect(t.ram.subarray(0x2000, 0x2200)).toEqual(t.image.read(0, 1));
    expect(t.status() & ATA_SR.DRQ).toBe(ATA_SR.DRQ);
    // a software reset recovers
    t.bus.out(CTL, 1, 0x04);
    t.bus.out(CTL, 1, 0x00);
    expect(t.status()).toBe(ATA_SR.DRDY | ATA_SR.DSC);
  });

  it('PRD regions larger than the transfer: Interrupt=1 with Active still 1', () => {
    const t = setup();
    prd(t, 0x100, [[0x2000, 4096, true]]);
    t.taskFile(0, 1);
    t.bus.out(CMD + 7, 1, 0xc8);
    t.bus.out(BM, 1, 0x09);
    expect(t.bus.in(BM + 2, 1) & (BM_ST.ACTIVE | BM_ST.INTERRUPT)).toBe(BM_ST.ACTIVE | BM_ST.INTERRUPT);
    t.bus.out(BM, 1, 0x00);
    expect(t.bus.in(BM + 2, 1) & BM_ST.ACTIVE).toBe(0);
  });

  it('a PRD table with no end-of-table mark is bounded (at most 8192 entries)', () => {
    const t = setup();
    // 8192 entries of 2 bytes each, none with EOT: 16 KiB described, 32 KiB wanted
    prd(t, 0x10000, Array.from({ length: 8192 }, (_, i) => [0x30000 + i * 2, 2, false] as [number, number, boolean]));
    t.taskFile(0, 64);
    t.bus.out(CMD + 7, 1, 0xc8);
    t.bus.out(BM, 1, 0x09);
    expect(t.bus.in(BM + 2, 1) & (BM_ST.ACTIVE | BM_ST.INTERRUPT)).toBe(0);
  });

  it('engine direction opposite to the command is refused with a bus-master error', () => {
    const t = setup();
    prd(t, 0x100, [[0x2000, 512, true]]);
    t.taskFile(0, 1);
    t.bus.out(CMD + 7, 1, 0xc8);
    t.bus.out(BM, 1, 0x01); // engine reads memory, command wants to write it
    expect(t.bus.in(BM + 2, 1) & BM_ST.ERROR).toBe(BM_ST.ERROR);
    expect(t.ram.subarray(0x2000, 0x2200).every((b) => b === 0)).toBe(true);
  });

  it('DMA to an out-of-range LBA fails in the drive before any transfer', () => {
    const t = setup({ sectors: 10 });
    prd(t, 0x100, [[0x2000, 512, true]]);
    t.taskFile(10, 1);
    t.bus.out(CMD + 7, 1, 0xc8);
    expect(t.bus.in(CMD + 1, 1)).toBe(ATA_ER.IDNF);
    t.bus.out(BM, 1, 0x09);
    expect(t.ata.counters.dmaTransfers).toBe(0);
  });
});
