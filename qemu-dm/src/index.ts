/**
 * @xenlab/qemu-dm — the per-HVM-guest device model: device models behind one ioreq dispatch
 * table, and the virtual BIOS image. See ../README.md for the device list, the port map and the
 * snapshot format. The process itself is `main.ts` around `device-model.ts`.
 */
export type { AccessSize, BlockImage, DmaMemory, IoDevice, IrqLine } from './devices/types.ts';
export { SECTOR_SIZE } from './devices/types.ts';
export { FileBlockImage, FlatDmaMemory, MemoryBlockImage } from './devices/memory.ts';
export { IoBus, NO_MEMORY } from './devices/io-bus.ts';
export type { IoRequest, IoSpace, PortCounter } from './devices/io-bus.ts';
export { AtaController, ATA_CMD, ATA_ER, ATA_SR, ATA_PRIMARY_BMIDE_BASE, ATA_PRIMARY_CMD_BASE, ATA_PRIMARY_CTL_PORT, BM_CMD, BM_ST } from './devices/ata.ts';
export { Uart16550, COM1_BASE } from './devices/uart16550.ts';
export { I8042 } from './devices/i8042.ts';
export { CmosRtc, CMOS, XENLAB_BIOS_FLAG_DMA } from './devices/cmos-rtc.ts';
export type { BootDevice } from './devices/cmos-rtc.ts';
export { VgaText, VGA_TEXT_BASE } from './devices/vga-text.ts';
export { DebugPort, PowerControl, PM1A_CNT_PORT, DEBUG_PORT } from './devices/power.ts';
export { PcPlatform } from './devices/pc-platform.ts';
export type { PcPlatformOptions, PcPlatformSnapshot } from './devices/pc-platform.ts';
export { MAX_IOREQ_COUNT, readIoreq, serveIoreqSlot, toIoRequest, writeIoreq } from './ioreq.ts';
export type { IoreqCopy, IoreqCounters } from './ioreq.ts';
export { BIOS_IMAGE_PATH, BIOS_LOAD_ADDRESS, loadBiosImage } from './bios.ts';
export { TestMachine } from './testing/test-machine.ts';
export type { TestMachineOptions, RunResult, Marker } from './testing/test-machine.ts';
