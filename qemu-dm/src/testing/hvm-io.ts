/**
 * Disk reads through the virtual BIOS, measured in exits: the HVM half of the issue's
 * `hvm-io` benchmark, runnable on its own and in-process (no hypervisor, no ioreq page round
 * trips: it counts the exits a real HVM guest would take and times only the CPU and the device
 * models). For each INT 13h mode the guest reads about 1 MiB in 127-sector AH=42h calls.
 *
 *   npx tsx qemu-dm/src/testing/hvm-io.ts [--mib N] [--json]
 */
import { MemoryBlockImage } from '../devices/memory.ts';
import { SECTOR_SIZE } from '../devices/types.ts';
import { READBENCH_SECTOR } from './boot-sectors.ts';
import { TestMachine } from './test-machine.ts';

export type DiskMode = 'pio' | 'pio-multiple' | 'dma';

export interface DiskReadResult {
  mode: DiskMode;
  sectors: number;
  bytes: number;
  /** Exits between the guest's start and done markers. */
  exits: number;
  exitsPerMiB: number;
  exitsPerSector: number;
  /** Exits per port ("pio:1f0") during the reads. */
  ports: Record<string, number>;
  /** Guest instructions retired during the reads. */
  instructions: number;
  /** Host time for the reads, in ms (CPU emulation + device models, in one process). */
  hostMs: number;
}

/** Boot the read-benchmark sector and read `iterations` × 127 sectors in `mode`. */
export function measureDiskReads(mode: DiskMode, iterations: number): DiskReadResult {
  const sectors = iterations * 127;
  const disk = new MemoryBlockImage(sectors + 1);
  const boot = READBENCH_SECTOR.slice();
  boot[2] = iterations & 0xff;
  boot[3] = iterations >> 8;
  disk.bytes.set(boot, 0);
  const m = new TestMachine({ disk, dma: mode === 'dma', pioMultiple: mode === 'pio-multiple' });
  let startInstr = 0;
  let startTime = 0;
  m.run(10_000_000, (t) => {
    if (t.markers.length === 1 && startTime === 0) {
      startTime = performance.now();
      startInstr = t.instructions;
    }
    return t.markers.length >= 2;
  });
  const hostMs = performance.now() - startTime;
  const last = m.markers.at(-1);
  if (!last || last.value !== 2) {
    throw new Error(`hvm-io: the ${mode} read run did not finish (markers ${m.markers.map((k) => k.value.toString(16)).join(',')}; serial: ${m.serial.slice(-200)})`);
  }
  const { exits, ports } = m.exitsBetween(1, 2);
  const bytes = sectors * SECTOR_SIZE;
  const readExits = exits - 1; // minus the marker OUT itself
  return {
    mode,
    sectors,
    bytes,
    exits: readExits,
    exitsPerMiB: readExits / (bytes / (1 << 20)),
    exitsPerSector: readExits / sectors,
    ports,
    instructions: m.instructions - startInstr,
    hostMs,
  };
}

function main(argv: string[]): void {
  const json = argv.includes('--json');
  const mibArg = argv.indexOf('--mib');
  const mib = mibArg >= 0 ? Number(argv[mibArg + 1]) : 1;
  if (!(mib > 0 && mib <= 64)) {
    process.stderr.write('hvm-io: --mib wants a size between 1 and 64 (MiB to read per mode)\n');
    process.exit(2);
  }
  const iterations = Math.ceil((mib * 2048) / 127);
  const results = (['pio', 'pio-multiple', 'dma'] as const).map((mode) => measureDiskReads(mode, iterations));
  if (json) {
    process.stdout.write(JSON.stringify(results, null, 2) + '\n');
    return;
  }
  process.stdout.write(`INT 13h AH=42h reads of 127 sectors, ${(results[0].bytes / (1 << 20)).toFixed(2)} MiB per mode\n`);
  process.stdout.write('mode           exits   exits/MiB  exits/sector  host ms  MiB/s (in-process)\n');
  for (const r of results) {
    const mibs = r.bytes / (1 << 20) / (r.hostMs / 1000);
    process.stdout.write(
      `${r.mode.padEnd(13)} ${String(r.exits).padStart(6)} ${r.exitsPerMiB.toFixed(1).padStart(11)} ${r.exitsPerSector.toFixed(3).padStart(13)} ${r.hostMs.toFixed(1).padStart(8)} ${mibs.toFixed(1).padStart(7)}\n`,
    );
  }
}

if (import.meta.url === `file://${process.argv[1]}`) main(process.argv.slice(2));
