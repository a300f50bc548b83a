/**
 * The declarative list of PV vs HVM scenarios: which workload image (guests/workloads/), with
 * which parameters and disk size (full and quick profiles), which number is the headline and
 * how to check the guest's own result. Adding a scenario is adding an entry here.
 */
import { checkWritten, DATA_LBA, expectedRandCsum, expectedSeqCsum } from './disk.ts';

export type Profile = 'full' | 'quick';

export interface Sizing {
  /** Workload parameters P1..P3 (see each workload's header in guests/workloads/). */
  params: number[];
  /** Disk size in 512-byte sectors (the image, then the data area from LBA 64). */
  diskSectors: number;
}

export interface Metric {
  /** What the headline number is, e.g. "throughput". */
  name: string;
  unit: string;
  /** Which way is better (for the report's wording). */
  better: 'higher' | 'lower';
}

/** What one repetition measured, for a scenario to turn into its headline value. */
export interface Measured {
  phaseMs: number;
  bench: Record<string, string>;
}

export interface Scenario {
  name: string;
  /** File name in guests/workloads/. */
  image: string;
  description: string;
  full: Sizing;
  quick: Sizing;
  /**
   * The full profile on a host, where it differs: where every exit is a round trip to another
   * process, the in-process sizes can take minutes per run (sizingFor).
   */
  fullOnHost?: Sizing;
  metric: Metric;
  /** The headline value of one repetition. */
  value(m: Measured): number;
  /** What the counters are normalised by (for the explanation): e.g. MiB moved, or operations. */
  unit: { name: string; of(bench: Record<string, string>): number };
  /** Checks the guest's reported result against what the parameters imply; returns a problem or null. */
  verify(bench: Record<string, string>, params: readonly number[]): string | null;
  /**
   * For workloads that write: the disk is made afresh before every run with the data area's
   * stamps inverted, and this checks the image afterwards (a problem, or null).
   */
  verifyDisk?(disk: string, params: readonly number[]): string | null;
}

const MiB = 1024 * 1024;
const num = (b: Record<string, string>, k: string): number => Number(b[k]);
const hex4 = (n: number): string => n.toString(16).toUpperCase().padStart(4, '0');

function check(pairs: Array<[string, string | undefined, string]>): string | null {
  for (const [what, got, want] of pairs) if (got !== want) return `${what} is ${got ?? 'missing'}, expected ${want}`;
  return null;
}

const throughput = (m: Measured): number => num(m.bench, 'bytes') / MiB / (m.phaseMs / 1000);

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'seqread',
    image: 'seqread.bin',
    description: 'sequential read, 127 sectors per INT 13h AH=42h call',
    full: { params: [131072, 127], diskSectors: DATA_LBA + 131072 },
    quick: { params: [2048, 127], diskSectors: DATA_LBA + 2048 },
    metric: { name: 'throughput', unit: 'MiB/s', better: 'higher' },
    value: throughput,
    unit: { name: 'MiB', of: (b) => num(b, 'bytes') / MiB },
    verify: (b, p) => check([['sectors', b.sectors, String(p[0])], ['csum', b.csum, hex4(expectedSeqCsum(p[0]!))]]),
  },
  {
    name: 'seqwrite',
    image: 'seqwrite.bin',
    description: 'sequential write, 127 sectors per INT 13h AH=43h call',
    full: { params: [32768, 127], diskSectors: DATA_LBA + 32768 },
    quick: { params: [1024, 127], diskSectors: DATA_LBA + 1024 },
    metric: { name: 'throughput', unit: 'MiB/s', better: 'higher' },
    value: throughput,
    unit: { name: 'MiB', of: (b) => num(b, 'bytes') / MiB },
    verify: (b, p) => check([['sectors', b.sectors, String(p[0])], ['csum', b.csum, hex4(expectedSeqCsum(p[0]!))]]),
    verifyDisk: (disk, p) => checkWritten(disk, p[0]!, p[1]!),
  },
  {
    name: 'randread',
    image: 'randread.bin',
    description: 'random 4 KiB reads, 8 sectors per INT 13h AH=42h call, LBAs from an LCG',
    full: { params: [8192, 0x7ff, 1], diskSectors: DATA_LBA + 0x800 * 8 },
    quick: { params: [128, 0xff, 1], diskSectors: DATA_LBA + 0x100 * 8 },
    metric: { name: 'IOPS', unit: 'ops/s', better: 'higher' },
    value: (m) => num(m.bench, 'ops') / (m.phaseMs / 1000),
    unit: { name: 'op', of: (b) => num(b, 'ops') },
    verify: (b, p) => check([['ops', b.ops, String(p[0])], ['csum', b.csum, hex4(expectedRandCsum(p[0]!, p[1]!, p[2]!))]]),
  },
  {
    name: 'cpuloop',
    image: 'cpuloop.bin',
    description: 'CPU-bound loop, no I/O in the measured phase (same instructions on the same CPU)',
    full: { params: [4_000_000], diskSectors: DATA_LBA + 64 },
    quick: { params: [100_000], diskSectors: DATA_LBA + 64 },
    metric: { name: 'time', unit: 'ms', better: 'lower' },
    value: (m) => m.phaseMs,
    unit: { name: 'M iterations', of: (b) => num(b, 'iterations') / 1e6 },
    verify: (b, p) => check([['iterations', b.iterations, String(p[0])]]),
  },
  {
    name: 'console',
    image: 'console.bin',
    description: 'console output of a large text through INT 10h AH=0Eh',
    full: { params: [2000], diskSectors: DATA_LBA + 64 },
    quick: { params: [50], diskSectors: DATA_LBA + 64 },
    // HVM on a host: ~60 000 ioreqs to qemu-dm per KiB once the screen scrolls, so 2000 lines took
    // 5.5 min per run on a busy 2-core machine; 200 lines (175 of them scrolling) take 5-35 s.
    fullOnHost: { params: [200], diskSectors: DATA_LBA + 64 },
    metric: { name: 'throughput', unit: 'KiB/s', better: 'higher' },
    value: (m) => num(m.bench, 'bytes') / 1024 / (m.phaseMs / 1000),
    unit: { name: 'KiB', of: (b) => num(b, 'bytes') / 1024 },
    verify: (b, p) => check([['lines', b.lines, String(p[0])]]),
  },
  {
    name: 'boot',
    image: 'boot.bin',
    description: 'boot to first output: start of the guest to its first line',
    full: { params: [], diskSectors: DATA_LBA + 64 },
    quick: { params: [], diskSectors: DATA_LBA + 64 },
    metric: { name: 'time', unit: 'ms', better: 'lower' },
    value: (m) => m.phaseMs,
    unit: { name: 'boot', of: () => 1 },
    verify: () => null,
  },
];

/** The sizes a scenario runs with in a profile, on a backend of this mode. */
export function sizingFor(sc: Scenario, profile: Profile, mode: 'in-process' | 'host'): Sizing {
  if (profile === 'quick') return sc.quick;
  return mode === 'host' && sc.fullOnHost ? sc.fullOnHost : sc.full;
}

export function findScenarios(names: readonly string[] | undefined): Scenario[] {
  if (!names || names.length === 0) return [...SCENARIOS];
  return names.map((n) => {
    const s = SCENARIOS.find((x) => x.name === n);
    if (!s) throw new Error(`unknown scenario '${n}'; known: ${SCENARIOS.map((x) => x.name).join(', ')}`);
    return s;
  });
}
