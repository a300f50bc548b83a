/**
 * The guest programs, run for real: assembled images on the x86 CPU, their BIOS calls served by
 * the PV shim's BIOS layer, their disk I/O through blkfront, a shared ring and blkback to an
 * image file (see pv-guest-harness.ts for what is real and what is a test double). Also checks
 * that the checked-in images match their sources when nasm is installed.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadXlConfig } from '../../tools/src/xl-cfg/index.ts';
import { diskexPattern, diskexSum, parseDiskexOutput, runPvGuest } from './pv-guest-harness.ts';

const GUESTS = join(dirname(fileURLToPath(import.meta.url)), '..');
const image = (name: string) => new Uint8Array(readFileSync(join(GUESTS, name)));
const hex = (n: number, w: number) => n.toString(16).toUpperCase().padStart(w, '0');
/** Index of the first differing byte, or -1 (a deep toEqual on megabytes is slow). */
const firstDifference = (a: Uint8Array, b: Uint8Array): number => {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  if (Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length))) return -1;
  return a.findIndex((x, i) => x !== b[i]);
};
const hasNasm = spawnSync('nasm', ['-v']).status === 0;

describe('guest images', () => {
  it.each(['hello.bin', 'diskex.bin', 'echo.bin'])('%s is a boot sector (55AA at 510)', (name) => {
    const b = image(name);
    expect(b.length % 512).toBe(0);
    expect([b[510], b[511]]).toEqual([0x55, 0xaa]);
  });

  it.skipIf(!hasNasm)('checked-in images match their sources (guests/build.sh --check)', () => {
    const r = spawnSync(join(GUESTS, 'build.sh'), ['--check'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('the sample configs parse', () => {
    expect(loadXlConfig(join(GUESTS, 'echo.cfg')).kernel).toBe(join(GUESTS, 'echo.bin'));
    const hello = loadXlConfig(join(GUESTS, 'hello.cfg'));
    expect(hello).toMatchObject({ name: 'hello', type: 'pv', kernel: join(GUESTS, 'hello.bin'), onPoweroff: 'destroy' });
    const dk = loadXlConfig(join(GUESTS, 'diskex.cfg'));
    expect(dk.kernel).toBe(join(GUESTS, 'diskex.bin'));
    expect(dk.disks[0]).toMatchObject({ vdev: { number: 51712 }, access: 'rw', format: 'raw' });
    const boot = loadXlConfig(join(GUESTS, 'diskex-boot.cfg'));
    expect(boot.kernel).toBeUndefined();
    expect(boot.disks[0]!.target).toBe(join(GUESTS, 'diskex-boot.img'));
  });
});

describe('echo', () => {
  it('reads keys typed on the console through INT 16h and echoes the line', async () => {
    const r = await runPvGuest({ image: image('echo.bin'), boot: 'kernel', input: 'Hi x\r' });
    expect(r.outcome).toBe('poweroff');
    const lines = r.console.split('\r\n');
    expect(lines[0]).toBe('ECHO 1 MEM=0240 EQUIP=0020');
    expect(lines.slice(1, 6)).toEqual(['KEY=2348', 'KEY=1769', 'KEY=3920', 'KEY=2D78', 'KEY=1C0D']);
    expect(lines[6]).toBe('LINE=Hi x');
    expect(lines[7]).toMatch(/^TICKS=[0-9A-F]{8}$/);
    expect(lines[8]).toBe('DONE');
    expect(r.consoleLog).toBe(r.console);
    expect(r.traps).toMatchObject({ int11: 1, int12: 1, int16: 10, int1a: 1 });
  });
});

describe('hello', () => {
  it('prints its line and powers off, as a kernel', async () => {
    const r = await runPvGuest({ image: image('hello.bin'), boot: 'kernel' });
    expect(r.console).toBe('Hello from a xenlab guest!\r\n');
    expect(r.consoleLog).toBe(r.console);
    expect(r.outcome).toBe('poweroff');
  });
});

/** A 4 MiB disk: diskex in sectors 0..4 when it boots from it, a known pattern everywhere else. */
function makeDisk(withProgram: Uint8Array | null): { path: string; bytes: Uint8Array } {
  const sectors = 8192;
  const bytes = new Uint8Array(sectors * 512);
  for (let s = 0; s < sectors; s++) for (let i = 0; i < 512; i++) bytes[s * 512 + i] = (s * 7 + i * 3) & 0xff;
  if (withProgram) bytes.set(withProgram, 0);
  const path = join(mkdtempSync(join(tmpdir(), 'diskex-')), 'disk.img');
  writeFileSync(path, bytes);
  return { path, bytes };
}

describe.each(['kernel', 'disk'] as const)('diskex booted from %s', (boot) => {
  it('reads and writes through INT 13h -> blkfront -> ring -> blkback -> image, with the expected checksums', async () => {
    const program = image('diskex.bin');
    const disk = makeDisk(boot === 'disk' ? program : null);
    const r = await runPvGuest({ image: program, boot, disk: disk.path });
    expect(r.outcome).toBe('poweroff');
    const lines = parseDiskexOutput(r.console);
    if (process.env.SHOW_CONSOLE) console.log(r.console, r.blkfront, r.blkback, r.traps);

    // The disk the guest should have produced, and what each read should have seen.
    const expected = disk.bytes.slice();
    const at = (lba: number, n: number, bytes: Uint8Array = expected) => bytes.subarray(lba * 512, (lba + n) * 512);
    const before64 = diskexSum(at(64, 8, disk.bytes));
    const p43 = diskexPattern(8, 0x5a);
    const p03 = diskexPattern(2, 0xa5);
    expected.set(p43, 64 * 512);
    expected.set(p03, 72 * 512);
    const odd = expected.subarray(64 * 512, 67 * 512);

    const ok = { CF: '00', AH: '00' };
    expect(lines.get('DISKEX')).toEqual({ '1': 'true', DRIVE: '80' });
    expect(lines.get('RESET00')).toEqual(ok);
    expect(lines.get('EXT41')).toEqual({ ...ok, AH: '21', BX: 'AA55', CX: '0001' });
    expect(lines.get('GEOM08')).toEqual({ ...ok, CYL: '0008', HEADS: '10', SPT: '3F', DRIVES: '01' });
    expect(lines.get('TYPE15')).toEqual({ CF: '00', AH: '03', SECTORS: '00002000' });
    expect(lines.get('PARAM48')).toEqual({ ...ok, SECTORS: '00002000', BPS: '0200' });
    expect(lines.get('READ02')).toEqual({ LBA: '00000000', N: '01', ...ok, SUM: hex(diskexSum(at(0, 1, disk.bytes)), 4) });
    expect(lines.get('READ42')).toEqual({ LBA: '00000040', N: '08', ...ok, SUM: hex(before64, 4) });
    expect(lines.get('WRITE43')).toEqual({ LBA: '00000040', N: '08', ...ok, SUM: hex(diskexSum(p43), 4) });
    expect(lines.get('VERIFY42')).toEqual({ LBA: '00000040', N: '08', ...ok, SUM: hex(diskexSum(p43), 4), OK: 'true' });
    expect(lines.get('WRITE03')).toEqual({ LBA: '00000048', N: '02', ...ok, SUM: hex(diskexSum(p03), 4) });
    expect(lines.get('VERIFY02')).toEqual({ LBA: '00000048', N: '02', ...ok, SUM: hex(diskexSum(p03), 4), OK: 'true' });
    expect(lines.get('BIG42')).toEqual({ LBA: '00000000', N: '7F', ...ok, SUM: hex(diskexSum(at(0, 127)), 4) });
    expect(lines.get('MID42')).toEqual({ LBA: '00000040', N: '10', ...ok, SUM: hex(diskexSum(at(64, 16)), 4) });
    expect(lines.get('ODD42')).toEqual({ LBA: '00000040', N: '03', ...ok, SUM: hex(diskexSum(odd), 4) });
    expect(lines.get('PAST42')).toEqual({ LBA: '00002000', N: '01', CF: '01', AH: '04' });
    expect(lines.get('STATUS01')).toEqual({ AH: '04' });
    expect(lines.has('DONE')).toBe(true);
    expect(r.consoleLog).toBe(r.console);

    // The image on disk: exactly the two written ranges changed (and the writes were flushed).
    expect(firstDifference(new Uint8Array(readFileSync(disk.path)), expected)).toBe(-1);

    // The 127-sector read needed two requests (16 pages > 11 segments); the odd buffer bounced.
    expect(r.blkback!.errors).toBe(0);
    expect(r.blkback!.flushes).toBe(2);
    expect(r.blkfront!.requests).toBeGreaterThanOrEqual(r.blkback!.requests);
    expect(r.grants.granted).toBe(r.grants.ended + 1); // all but the ring page's grant were ended
    // The handshake's xenstore writes, in order (docs/xenbus-handshake.md).
    const states = r.handshake.filter((h) => / state=/.test(h));
    expect(states).toEqual(['back state=2', 'front state=3', 'back state=4', 'front state=4']);
    expect(r.handshake.indexOf('front ring-ref=8')).toBeLessThan(r.handshake.indexOf('front state=3'));
    expect(r.handshake.indexOf('back sectors=8192')).toBeLessThan(r.handshake.indexOf('back state=4'));
  });
});
