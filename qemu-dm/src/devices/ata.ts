/**
 * ATA/IDE primary channel with one hard disk (device 0), plus the channel's PCI bus-master IDE
 * (BMIDE) DMA engine. Re-creates what QEMU's hw/ide/core.c + hw/ide/pci.c (PIIX) show a guest,
 * following ATA/ATAPI-6 (T13/1410D) for the task file and protocols and the Intel PIIX4 datasheet
 * §"Bus Master IDE" for the DMA engine.
 *
 * Windows (each an `IoDevice` facet of this one controller; see README.md "Port map"):
 *   commandBlock  1F0-1F7  data, error/features, sector count, LBA low/mid/high (CHS: sector,
 *                          cylinder low/high), device/head, status/command
 *   control       3F6      alternate status (read) / device control (write: nIEN bit 1, SRST bit 2)
 *   busMaster     C000-C007 BMIDE: +0 command (bit 0 start, bit 3 = write to memory), +2 status
 *                          (bit 0 active, bit 1 error W1C, bit 2 interrupt W1C, bits 5-6 drive
 *                          DMA capable), +4 PRD table address (dword)
 *
 * Protocols (ATA-6 §9): PIO data-in (IDENTIFY, READ SECTORS/MULTIPLE: interrupt at the start of
 * every DRQ block), PIO data-out (WRITE SECTORS/MULTIPLE: interrupt after every block), non-data
 * (SET MULTIPLE, VERIFY, ...), and DMA (READ/WRITE DMA run when both the command is issued and the
 * bus master is started: the whole transfer is one guest exit). The emulation is synchronous, so
 * BSY is never seen by the guest except during a software reset.
 *
 * Guest mistakes give hardware answers, never exceptions: unknown commands → ERR + ABRT,
 * addresses past the end → ERR + IDNF, data-port reads with nothing pending → 0, PRD tables
 * outside RAM → bus-master error bit and ERR + ABRT.
 */
import { b64ToBytes, bytesToB64 } from './memory.ts';
import { SECTOR_SIZE, type AccessSize, type BlockImage, type DmaMemory, type IoDevice, type IrqLine } from './types.ts';

/** Status register bits (ATA-6 §7.15.6). */
export const ATA_SR = { ERR: 0x01, DRQ: 0x08, DSC: 0x10, DF: 0x20, DRDY: 0x40, BSY: 0x80 } as const;
/** Error register bits (ATA-6 §7.9). */
export const ATA_ER = { AMNF: 0x01, ABRT: 0x04, IDNF: 0x10, UNC: 0x40 } as const;
/** Device control register bits. */
export const ATA_DC = { nIEN: 0x02, SRST: 0x04 } as const;
/** Command codes implemented here (ATA-6 §8). */
export const ATA_CMD = {
  RECALIBRATE: 0x10,
  READ_SECTORS: 0x20,
  READ_SECTORS_NORETRY: 0x21,
  WRITE_SECTORS: 0x30,
  WRITE_SECTORS_NORETRY: 0x31,
  READ_VERIFY: 0x40,
  READ_VERIFY_NORETRY: 0x41,
  SEEK: 0x70,
  EXECUTE_DIAGNOSTIC: 0x90,
  INITIALIZE_DEVICE_PARAMETERS: 0x91,
  READ_MULTIPLE: 0xc4,
  WRITE_MULTIPLE: 0xc5,
  SET_MULTIPLE_MODE: 0xc6,
  READ_DMA: 0xc8,
  READ_DMA_NORETRY: 0xc9,
  WRITE_DMA: 0xca,
  WRITE_DMA_NORETRY: 0xcb,
  STANDBY_IMMEDIATE: 0xe0,
  IDLE_IMMEDIATE: 0xe1,
  STANDBY: 0xe2,
  IDLE: 0xe3,
  CHECK_POWER_MODE: 0xe5,
  FLUSH_CACHE: 0xe7,
  IDENTIFY_DEVICE: 0xec,
  SET_FEATURES: 0xef,
  READ_NATIVE_MAX_ADDRESS: 0xf8,
} as const;

/** Bus-master IDE register bits (PIIX4 datasheet, BMICX / BMISX). */
export const BM_CMD = { START: 0x01, WRITE_TO_MEMORY: 0x08 } as const;
export const BM_ST = { ACTIVE: 0x01, ERROR: 0x02, INTERRUPT: 0x04, DRV0_DMA: 0x20, DRV1_DMA: 0x40 } as const;

/** Fixed I/O bases used by xenlab (no PCI BAR programming: the BMIDE base is fixed at C000h). */
export const ATA_PRIMARY_CMD_BASE = 0x1f0;
export const ATA_PRIMARY_CTL_PORT = 0x3f6;
export const ATA_PRIMARY_BMIDE_BASE = 0xc000;
export const ATA_PRIMARY_IRQ = 14;

/** Largest READ/WRITE MULTIPLE block (IDENTIFY word 47). */
export const ATA_MAX_MULTIPLE = 16;
const MAX_LBA28 = 0x0fffffff;
/** A PRD table may not cross a 64 KiB boundary, so it has at most 8192 entries. */
const MAX_PRD_ENTRIES = 8192;

type Transfer = 'none' | 'pio-in' | 'pio-out';

interface AtaState {
  feature: number;
  error: number;
  nsector: number;
  sector: number;
  lcyl: number;
  hcyl: number;
  select: number;
  status: number;
  devCtl: number;
  multCount: number;
  heads: number;
  spt: number;
  cyls: number;
  transfer: Transfer;
  /** Current DRQ block (base64) and the position in it. */
  buffer: string;
  pos: number;
  /** Next sector to move after the current block; sectors still to move after it. */
  nextLba: number;
  remaining: number;
  blockSectors: number;
  /** True when the command is in CHS mode (address registers are written back as CHS). */
  chs: boolean;
  dma: { write: boolean; lba: number; count: number } | null;
  irqPending: boolean;
  bmCmd: number;
  bmStatus: number;
  bmPrdt: number;
}

export interface AtaCounters {
  commands: number;
  sectorsRead: number;
  sectorsWritten: number;
  dmaTransfers: number;
  errors: number;
  /** Guest accesses that real hardware would ignore (data port with nothing pending, etc.). */
  ignored: number;
}

export interface AtaOptions {
  image: BlockImage;
  irq: IrqLine;
  dma: DmaMemory;
  /** IDENTIFY model string (40 chars max). */
  model?: string;
  serial?: string;
}

export class AtaController {
  readonly commandBlock: IoDevice;
  readonly control: IoDevice;
  readonly busMaster: IoDevice;
  readonly counters: AtaCounters = { commands: 0, sectorsRead: 0, sectorsWritten: 0, dmaTransfers: 0, errors: 0, ignored: 0 };

  private readonly image: BlockImage;
  private readonly irq: IrqLine;
  private readonly mem: DmaMemory;
  private readonly model: string;
  private readonly serial: string;
  private readonly totalSectors: number;
  private readonly defaultGeometry: { cyls: number; heads: number; spt: number };
  private s!: Omit<AtaState, 'buffer'>;
  private buffer: Uint8Array = new Uint8Array(0);
  private irqLevel = false;

  constructor(opts: AtaOptions) {
    this.image = opts.image;
    this.irq = opts.irq;
    this.mem = opts.dma;
    this.model = opts.model ?? 'XENLAB HARDDISK';
    this.serial = opts.serial ?? 'XL0000000001';
    this.totalSectors = Math.min(opts.image.sectors, MAX_LBA28);
    // The classic translation: 16 heads, 63 sectors per track, as many cylinders as fit.
    this.defaultGeometry = { heads: 16, spt: 63, cyls: Math.max(1, Math.min(16383, Math.floor(this.totalSectors / (16 * 63)))) };
    this.powerOn();
    const self = this;
    const facet = (name: string, read: (o: number, s: AccessSize) => number, write: (o: number, s: AccessSize, v: number) => void): IoDevice => ({
      name,
      read,
      write,
      snapshot: () => self.snapshot(),
      restore: (st: unknown) => self.restore(st),
    });
    this.commandBlock = {
      ...facet('ata0', (o, s) => this.readCommandBlock(o, s), (o, s, v) => this.writeCommandBlock(o, s, v)),
      readRep: (o, s, n) => this.readRep(o, s, n),
      writeRep: (o, s, d) => this.writeRep(o, s, d),
    };
    this.control = facet('ata0-ctl', () => this.altStatus(), (_o, _s, v) => this.writeDevCtl(v));
    this.busMaster = facet('ata0-bmide', (o, s) => this.readBm(o, s), (o, s, v) => this.writeBm(o, s, v));
  }

  /** The current INTRQ level as the PIC sees it. */
  get irqAsserted(): boolean {
    return this.irqLevel;
  }

  snapshot(): AtaState {
    return { ...this.s, dma: this.s.dma && { ...this.s.dma }, buffer: bytesToB64(this.buffer) };
  }

  restore(state: unknown): void {
    const st = state as AtaState;
    const { buffer, ...rest } = st;
    this.s = { ...rest, dma: rest.dma && { ...rest.dma } };
    this.buffer = b64ToBytes(buffer);
    this.updateIrq();
  }

  // ---------------------------------------------------------------------------------------
  // Register windows
  // ---------------------------------------------------------------------------------------

  private readCommandBlock(offset: number, size: AccessSize): number {
    const s = this.s;
    if (offset === 0) return this.readData(size);
    // Device 1 is absent: device 0 answers its register reads with 0 (ATA-6 §9.16.1).
    if (this.device1Selected() && offset === 7) return 0;
    switch (offset) {
      case 1: return s.error;
      case 2: return s.nsector;
      case 3: return s.sector;
      case 4: return s.lcyl;
      case 5: return s.hcyl;
      case 6: return s.select;
      default: {
        // Reading Status acknowledges the interrupt (ATA-6 §7.15).
        s.irqPending = false;
        this.updateIrq();
        return s.status;
      }
    }
  }

  private writeCommandBlock(offset: number, size: AccessSize, value: number): void {
    const s = this.s;
    if (offset === 0) return this.writeData(size, value);
    value &= 0xff;
    if (s.status & ATA_SR.BSY) {
      this.counters.ignored++;
      return; // registers are not writable while the device is busy (in reset)
    }
    switch (offset) {
      case 1: s.feature = value; break;
      case 2: s.nsector = value; break;
      case 3: s.sector = value; break;
      case 4: s.lcyl = value; break;
      case 5: s.hcyl = value; break;
      case 6: s.select = value | 0xa0; break; // bits 7 and 5 are obsolete and read as 1
      default:
        if (this.device1Selected()) {
          this.counters.ignored++;
          return; // nobody is there to take the command
        }
        this.execute(value);
    }
  }

  private altStatus(): number {
    return this.device1Selected() ? 0 : this.s.status;
  }

  private writeDevCtl(value: number): void {
    const s = this.s;
    const wasReset = (s.devCtl & ATA_DC.SRST) !== 0;
    s.devCtl = value & (ATA_DC.nIEN | ATA_DC.SRST);
    if (s.devCtl & ATA_DC.SRST) {
      if (!wasReset) {
        // Software reset asserted: abandon whatever was going on, stay busy until released.
        this.endTransfer();
        s.dma = null;
        s.status = ATA_SR.BSY;
        s.irqPending = false;
      }
    } else if (wasReset) {
      // Released: the device shows its diagnostic signature (ATA-6 §9.2).
      this.setSignature();
      s.error = 0x01;
      s.status = ATA_SR.DRDY | ATA_SR.DSC;
    }
    this.updateIrq();
  }

  private readBm(offset: number, size: AccessSize): number {
    const s = this.s;
    let v: number;
    switch (offset & ~3) {
      case 0: v = s.bmCmd | (s.bmStatus << 16); break;
      case 4: v = s.bmPrdt; break;
      default: return size === 1 ? 0xff : size === 2 ? 0xffff : 0xffffffff;
    }
    const shift = (offset & 3) * 8;
    const mask = size === 1 ? 0xff : size === 2 ? 0xffff : 0xffffffff;
    return (v >>> shift) & mask;
  }

  private writeBm(offset: number, size: AccessSize, value: number): void {
    for (let i = 0; i < size; i++) {
      const o = offset + i;
      const b = (value >>> (8 * i)) & 0xff;
      this.writeBmByte(o, b);
    }
  }

  private writeBmByte(o: number, b: number): void {
    const s = this.s;
    switch (o) {
      case 0: {
        const start = (b & BM_CMD.START) !== 0;
        const wasStarted = (s.bmCmd & BM_CMD.START) !== 0;
        // The direction bit may only change while stopped (PIIX4: "must not be changed while active").
        const dir = wasStarted ? s.bmCmd & BM_CMD.WRITE_TO_MEMORY : b & BM_CMD.WRITE_TO_MEMORY;
        s.bmCmd = (start ? BM_CMD.START : 0) | dir;
        if (start && !wasStarted) {
          s.bmStatus |= BM_ST.ACTIVE;
          this.runDma();
        } else if (!start) {
          s.bmStatus &= ~BM_ST.ACTIVE; // stopping aborts an unfinished transfer
        }
        break;
      }
      case 2:
        s.bmStatus = (s.bmStatus & ~(BM_ST.DRV0_DMA | BM_ST.DRV1_DMA)) | (b & (BM_ST.DRV0_DMA | BM_ST.DRV1_DMA));
        s.bmStatus &= ~(b & (BM_ST.ERROR | BM_ST.INTERRUPT)); // write 1 to clear
        break;
      case 4: case 5: case 6: case 7: {
        const shift = (o - 4) * 8;
        s.bmPrdt = ((s.bmPrdt & ~(0xff << shift)) | (b << shift)) >>> 0;
        s.bmPrdt = (s.bmPrdt & ~3) >>> 0; // dword aligned: bits 1-0 read as 0
        break;
      }
      default:
        break; // reserved
    }
  }

  // ---------------------------------------------------------------------------------------
  // Data port (PIO)
  // ---------------------------------------------------------------------------------------

  /** One data-port access moves one 16-bit word (two for a dword access); a byte access moves a word too. */
  private readData(size: AccessSize): number {
    const bytes = size === 4 ? 4 : 2;
    const s = this.s;
    if (s.transfer !== 'pio-in' || !(s.status & ATA_SR.DRQ)) {
      this.counters.ignored++;
      return 0;
    }
    let v = 0;
    for (let i = 0; i < bytes && s.transfer === 'pio-in'; i++) {
      v |= this.buffer[s.pos++] << (8 * i);
      if (s.pos >= this.buffer.length) this.pioInBlockDone();
    }
    return size === 1 ? v & 0xff : v >>> 0;
  }

  private writeData(size: AccessSize, value: number): void {
    const bytes = size === 4 ? 4 : 2;
    const s = this.s;
    if (s.transfer !== 'pio-out' || !(s.status & ATA_SR.DRQ)) {
      this.counters.ignored++;
      return;
    }
    for (let i = 0; i < bytes && s.transfer === 'pio-out'; i++) {
      this.buffer[s.pos++] = (value >>> (8 * i)) & 0xff;
      if (s.pos >= this.buffer.length) this.pioOutBlockDone();
    }
  }

  /** `rep insw` as one request: the words the data port would have returned, across DRQ blocks. */
  private readRep(offset: number, size: AccessSize, count: number): Uint8Array {
    const out = new Uint8Array(count * size);
    if (offset !== 0) {
      for (let i = 0; i < count; i++) {
        const v = this.readCommandBlock(offset, size);
        for (let b = 0; b < size; b++) out[i * size + b] = (v >>> (8 * b)) & 0xff;
      }
      return out;
    }
    const per = size === 4 ? 4 : 2;
    let i = 0;
    const s = this.s;
    if (size !== 1) {
      // Fast path: copy whole runs out of the current block.
      while (i < count && s.transfer === 'pio-in' && s.status & ATA_SR.DRQ) {
        const n = Math.min(count - i, Math.floor((this.buffer.length - s.pos) / per));
        if (n === 0) break;
        out.set(this.buffer.subarray(s.pos, s.pos + n * per), i * size);
        s.pos += n * per;
        i += n;
        if (s.pos >= this.buffer.length) this.pioInBlockDone();
      }
    }
    for (; i < count; i++) {
      const v = this.readData(size);
      for (let b = 0; b < size; b++) out[i * size + b] = (v >>> (8 * b)) & 0xff;
    }
    return out;
  }

  private writeRep(offset: number, size: AccessSize, data: Uint8Array): void {
    const count = Math.floor(data.length / size);
    if (offset !== 0) {
      for (let i = 0; i < count; i++) this.writeCommandBlock(offset, size, data[i * size]);
      return;
    }
    const per = size === 4 ? 4 : 2;
    let i = 0;
    const s = this.s;
    if (size !== 1) {
      while (i < count && s.transfer === 'pio-out' && s.status & ATA_SR.DRQ) {
        const n = Math.min(count - i, Math.floor((this.buffer.length - s.pos) / per));
        if (n === 0) break;
        this.buffer.set(data.subarray(i * size, (i + n) * size), s.pos);
        s.pos += n * per;
        i += n;
        if (s.pos >= this.buffer.length) this.pioOutBlockDone();
      }
    }
    for (; i < count; i++) {
      let v = 0;
      for (let b = size - 1; b >= 0; b--) v = v * 256 + data[i * size + b];
      this.writeData(size, v);
    }
  }

  private pioInBlockDone(): void {
    const s = this.s;
    if (s.remaining > 0) {
      this.loadReadBlock();
      this.raiseIrq();
    } else {
      this.endTransfer();
      s.status = ATA_SR.DRDY | ATA_SR.DSC;
    }
  }

  private pioOutBlockDone(): void {
    const s = this.s;
    const sectors = this.buffer.length / SECTOR_SIZE;
    const lba = s.nextLba - sectors;
    this.image.write(lba, this.buffer);
    this.counters.sectorsWritten += sectors;
    this.setAddress(s.nextLba - 1);
    if (s.remaining > 0) {
      this.prepareWriteBlock();
    } else {
      this.endTransfer();
      s.status = ATA_SR.DRDY | ATA_SR.DSC;
    }
    this.raiseIrq(); // PIO data-out interrupts after every block (ATA-6 §9.8)
  }

  private loadReadBlock(): void {
    const s = this.s;
    const n = Math.min(s.blockSectors, s.remaining);
    this.buffer = this.image.read(s.nextLba, n);
    this.counters.sectorsRead += n;
    this.setAddress(s.nextLba + n - 1);
    s.nextLba += n;
    s.remaining -= n;
    s.pos = 0;
    s.transfer = 'pio-in';
    s.status = ATA_SR.DRDY | ATA_SR.DSC | ATA_SR.DRQ;
  }

  private prepareWriteBlock(): void {
    const s = this.s;
    const n = Math.min(s.blockSectors, s.remaining);
    this.buffer = new Uint8Array(n * SECTOR_SIZE);
    s.nextLba += n;
    s.remaining -= n;
    s.pos = 0;
    s.transfer = 'pio-out';
    s.status = ATA_SR.DRDY | ATA_SR.DSC | ATA_SR.DRQ;
  }

  private endTransfer(): void {
    this.s.transfer = 'none';
    this.s.pos = 0;
    this.buffer = new Uint8Array(0);
  }

  // ---------------------------------------------------------------------------------------
  // Commands
  // ---------------------------------------------------------------------------------------

  private execute(cmd: number): void {
    const s = this.s;
    this.counters.commands++;
    // Writing the Command register clears a pending interrupt and ends any data transfer.
    s.irqPending = false;
    this.endTransfer();
    s.dma = null;
    s.error = 0;
    this.updateIrq();
    const C = ATA_CMD;
    switch (cmd) {
      case C.IDENTIFY_DEVICE:
        this.buffer = this.identify();
        s.pos = 0;
        s.remaining = 0;
        s.transfer = 'pio-in';
        s.status = ATA_SR.DRDY | ATA_SR.DSC | ATA_SR.DRQ;
        this.raiseIrq();
        return;
      case C.READ_SECTORS:
      case C.READ_SECTORS_NORETRY:
        return this.startPio(false, 1);
      case C.READ_MULTIPLE:
        if (s.multCount === 0) return this.abort();
        return this.startPio(false, s.multCount);
      case C.WRITE_SECTORS:
      case C.WRITE_SECTORS_NORETRY:
        return this.startPio(true, 1);
      case C.WRITE_MULTIPLE:
        if (s.multCount === 0) return this.abort();
        return this.startPio(true, s.multCount);
      case C.SET_MULTIPLE_MODE: {
        const n = s.nsector;
        if (n !== 0 && (n > ATA_MAX_MULTIPLE || (n & (n - 1)) !== 0)) return this.abort();
        s.multCount = n;
        return this.complete();
      }
      case C.READ_DMA:
      case C.READ_DMA_NORETRY:
      case C.WRITE_DMA:
      case C.WRITE_DMA_NORETRY: {
        const r = this.commandRange();
        if (r === null) return this.fail(ATA_ER.IDNF);
        if ((cmd === C.WRITE_DMA || cmd === C.WRITE_DMA_NORETRY) && this.image.readOnly) return this.abort();
        s.dma = { write: cmd === C.WRITE_DMA || cmd === C.WRITE_DMA_NORETRY, lba: r.lba, count: r.count };
        s.status = ATA_SR.DRDY | ATA_SR.DSC | ATA_SR.DRQ;
        this.runDma();
        return;
      }
      case C.READ_VERIFY:
      case C.READ_VERIFY_NORETRY: {
        const r = this.commandRange();
        if (r === null) return this.fail(ATA_ER.IDNF);
        this.setAddress(r.lba + r.count - 1);
        return this.complete();
      }
      case C.INITIALIZE_DEVICE_PARAMETERS: {
        const heads = (s.select & 0x0f) + 1;
        const spt = s.nsector;
        if (spt === 0) return this.abort();
        s.heads = heads;
        s.spt = spt;
        s.cyls = Math.max(1, Math.min(65535, Math.floor(this.totalSectors / (heads * spt))));
        return this.complete();
      }
      case C.SEEK: {
        const r = this.commandRange(1);
        if (r === null) return this.fail(ATA_ER.IDNF);
        return this.complete();
      }
      case C.EXECUTE_DIAGNOSTIC:
        this.setSignature();
        s.error = 0x01; // device 0 passed, device 1 absent
        return this.complete();
      case C.CHECK_POWER_MODE:
        s.nsector = 0xff; // active or idle
        return this.complete();
      case C.SET_FEATURES:
        // 02/82 write cache on/off, 03 set transfer mode, AA/55 read look-ahead on/off.
        if (![0x02, 0x82, 0x03, 0xaa, 0x55].includes(s.feature)) return this.abort();
        return this.complete();
      case C.READ_NATIVE_MAX_ADDRESS:
        this.setAddress(this.totalSectors - 1, true);
        return this.complete();
      case C.FLUSH_CACHE:
      case C.STANDBY_IMMEDIATE:
      case C.IDLE_IMMEDIATE:
      case C.STANDBY:
      case C.IDLE:
        return this.complete();
      default:
        if ((cmd & 0xf0) === C.RECALIBRATE) {
          s.sector = s.chs ? 1 : s.sector;
          return this.complete();
        }
        return this.abort();
    }
  }

  private startPio(write: boolean, blockSectors: number): void {
    const s = this.s;
    const r = this.commandRange();
    if (r === null) return this.fail(ATA_ER.IDNF);
    if (write && this.image.readOnly) return this.abort();
    s.nextLba = r.lba;
    s.remaining = r.count;
    s.blockSectors = blockSectors;
    if (write) {
      this.prepareWriteBlock(); // DRQ without an interrupt for the first block
    } else {
      this.loadReadBlock();
      this.raiseIrq();
    }
  }

  /**
   * The start sector and count of the command in the task file, or null when any sector lies
   * outside the medium (or the CHS address is not a valid one for the current geometry).
   */
  private commandRange(countOverride?: number): { lba: number; count: number } | null {
    const s = this.s;
    const count = countOverride ?? (s.nsector === 0 ? 256 : s.nsector);
    let lba: number;
    if (s.select & 0x40) {
      s.chs = false;
      lba = ((s.select & 0x0f) << 24) | (s.hcyl << 16) | (s.lcyl << 8) | s.sector;
    } else {
      s.chs = true;
      const cyl = (s.hcyl << 8) | s.lcyl;
      const head = s.select & 0x0f;
      const sect = s.sector;
      if (sect === 0 || sect > s.spt || head >= s.heads || cyl >= s.cyls) return null;
      lba = (cyl * s.heads + head) * s.spt + (sect - 1);
    }
    if (lba + count > this.totalSectors) return null;
    return { lba, count };
  }

  /** Write `lba` back into the address registers in the command's addressing mode. */
  private setAddress(lba: number, forceLba = false): void {
    const s = this.s;
    if (!s.chs || forceLba) {
      s.sector = lba & 0xff;
      s.lcyl = (lba >>> 8) & 0xff;
      s.hcyl = (lba >>> 16) & 0xff;
      s.select = (s.select & 0xf0) | ((lba >>> 24) & 0x0f);
    } else {
      const cyl = Math.floor(lba / (s.heads * s.spt));
      const rem = lba % (s.heads * s.spt);
      s.hcyl = (cyl >>> 8) & 0xff;
      s.lcyl = cyl & 0xff;
      s.select = (s.select & 0xf0) | (Math.floor(rem / s.spt) & 0x0f);
      s.sector = (rem % s.spt) + 1;
    }
  }

  private runDma(): void {
    const s = this.s;
    const req = s.dma;
    if (req === null || !(s.bmCmd & BM_CMD.START) || !(s.bmStatus & BM_ST.ACTIVE)) return;
    // The bus master's direction must match the command (a mismatch would move data the wrong
    // way on a real PIIX; xenlab refuses it and reports a bus-master error).
    const toMemory = (s.bmCmd & BM_CMD.WRITE_TO_MEMORY) !== 0;
    if (toMemory === req.write) return this.dmaError();
    const want = req.count * SECTOR_SIZE;
    const prds: { addr: number; len: number }[] = [];
    let total = 0;
    for (let i = 0; i < MAX_PRD_ENTRIES && total < want; i++) {
      const e = this.mem.read(s.bmPrdt + i * 8, 8);
      if (e === null) return this.dmaError();
      const addr = (e[0] | (e[1] << 8) | (e[2] << 16) | (e[3] << 24)) & ~1;
      const len = (e[4] | (e[5] << 8)) & ~1 || 0x10000;
      prds.push({ addr: addr >>> 0, len });
      total += len;
      if (e[7] & 0x80) break; // EOT
    }
    // Sectors that fit in the regions described (the device moves whole sectors).
    const sectors = Math.min(req.count, Math.floor(total / SECTOR_SIZE));
    const bytes = sectors * SECTOR_SIZE;
    if (req.write) {
      const data = new Uint8Array(bytes);
      let at = 0;
      for (const p of prds) {
        if (at >= bytes) break;
        const n = Math.min(p.len, bytes - at);
        const chunk = this.mem.read(p.addr, n);
        if (chunk === null) return this.dmaError();
        data.set(chunk, at);
        at += n;
      }
      if (sectors > 0) this.image.write(req.lba, data);
      this.counters.sectorsWritten += sectors;
    } else {
      const data = sectors > 0 ? this.image.read(req.lba, sectors) : new Uint8Array(0);
      let at = 0;
      for (const p of prds) {
        if (at >= bytes) break;
        const n = Math.min(p.len, bytes - at);
        if (!this.mem.write(p.addr, data.subarray(at, at + n))) return this.dmaError();
        at += n;
      }
      this.counters.sectorsRead += sectors;
    }
    this.counters.dmaTransfers++;
    if (sectors < req.count) {
      // PRD table smaller than the transfer: the engine stops (Active=0, Interrupt=0) while the
      // device still waits with DRQ for the rest; the guest recovers with a reset (PIIX4 table 5).
      req.lba += sectors;
      req.count -= sectors;
      s.bmStatus &= ~BM_ST.ACTIVE;
      if (sectors > 0) this.setAddress(req.lba - 1);
      return;
    }
    s.dma = null;
    this.setAddress(req.lba + req.count - 1);
    s.status = ATA_SR.DRDY | ATA_SR.DSC;
    // Regions larger than the transfer leave Active set (PIIX4: Interrupt=1, Active=1).
    if (total === want) s.bmStatus &= ~BM_ST.ACTIVE;
    this.raiseIrq();
  }

  private dmaError(): void {
    const s = this.s;
    s.dma = null;
    s.bmStatus = (s.bmStatus & ~BM_ST.ACTIVE) | BM_ST.ERROR;
    this.fail(ATA_ER.ABRT);
  }

  private complete(): void {
    this.s.status = ATA_SR.DRDY | ATA_SR.DSC;
    this.raiseIrq();
  }

  private abort(): void {
    this.fail(ATA_ER.ABRT);
  }

  private fail(error: number): void {
    const s = this.s;
    this.counters.errors++;
    this.endTransfer();
    s.error = error;
    s.status = ATA_SR.DRDY | ATA_SR.DSC | ATA_SR.ERR;
    this.raiseIrq();
  }

  private raiseIrq(): void {
    this.s.irqPending = true;
    this.updateIrq();
  }

  /** INTRQ is driven only while nIEN is clear; the bus master latches it in its Interrupt bit. */
  private updateIrq(): void {
    const s = this.s;
    const level = s.irqPending && !(s.devCtl & ATA_DC.nIEN);
    if (level && !this.irqLevel) s.bmStatus |= BM_ST.INTERRUPT;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.irq(level);
    }
  }

  private device1Selected(): boolean {
    return (this.s.select & 0x10) !== 0;
  }

  private setSignature(): void {
    const s = this.s;
    s.nsector = 1;
    s.sector = 1;
    s.lcyl = 0;
    s.hcyl = 0;
    s.select = 0xa0;
  }

  private powerOn(): void {
    const g = this.defaultGeometry;
    this.s = {
      feature: 0, error: 0x01, nsector: 1, sector: 1, lcyl: 0, hcyl: 0, select: 0xa0,
      status: ATA_SR.DRDY | ATA_SR.DSC, devCtl: 0, multCount: 0,
      heads: g.heads, spt: g.spt, cyls: g.cyls,
      transfer: 'none', pos: 0, nextLba: 0, remaining: 0, blockSectors: 1, chs: false,
      dma: null, irqPending: false, bmCmd: 0, bmStatus: BM_ST.DRV0_DMA, bmPrdt: 0,
    };
    this.buffer = new Uint8Array(0);
  }

  /** IDENTIFY DEVICE data (ATA-6 §8.15.8). */
  private identify(): Uint8Array {
    const w = new Uint16Array(256);
    const s = this.s;
    const g = this.defaultGeometry;
    const str = (at: number, words: number, text: string) => {
      const t = text.padEnd(words * 2, ' ');
      for (let i = 0; i < words; i++) w[at + i] = (t.charCodeAt(2 * i) << 8) | t.charCodeAt(2 * i + 1);
    };
    w[0] = 0x0040; // fixed device
    w[1] = g.cyls;
    w[3] = g.heads;
    w[6] = g.spt;
    str(10, 10, this.serial);
    str(23, 4, '0.1');
    str(27, 20, this.model);
    w[47] = 0x8000 | ATA_MAX_MULTIPLE;
    w[49] = 0x0300; // LBA and DMA supported
    w[51] = 0x0200;
    w[53] = 0x0007; // words 54-58, 64-70 and 88 are valid
    w[54] = s.cyls;
    w[55] = s.heads;
    w[56] = s.spt;
    const cur = Math.min(s.cyls * s.heads * s.spt, 0xffffffff);
    w[57] = cur & 0xffff;
    w[58] = cur >>> 16;
    w[59] = s.multCount ? 0x0100 | s.multCount : 0;
    w[60] = this.totalSectors & 0xffff;
    w[61] = this.totalSectors >>> 16;
    w[63] = 0x0407; // multiword DMA 0-2 supported, mode 2 selected
    w[64] = 0x0003; // PIO modes 3 and 4
    w[65] = w[66] = w[67] = w[68] = 120;
    w[80] = 0x007e; // ATA-1 .. ATA-6
    w[82] = 0x4000;
    w[83] = 0x4000;
    w[84] = 0x4000;
    w[85] = 0x4000;
    w[87] = 0x4000;
    return new Uint8Array(w.buffer);
  }
}
