/**
 * The checked-in BIOS image must be exactly what bios.asm assembles to. Runs nasm when it is
 * installed (CI installs it); without nasm only the image's fixed facts are checked.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const biosDir = fileURLToPath(new URL('../../bios/', import.meta.url));
const image = new Uint8Array(readFileSync(join(biosDir, 'bios.bin')));
const haveNasm = spawnSync('nasm', ['-v']).status === 0;

describe('virtual BIOS image', () => {
  it('is 64 KiB with a far jump at the reset vector F000:FFF0 and the AT model byte', () => {
    expect(image.length).toBe(0x10000);
    expect(image[0xfff0]).toBe(0xea); // JMP ptr16:16
    expect(image[0xfff3] | (image[0xfff4] << 8)).toBe(0xf000);
    expect(image[0xfffe]).toBe(0xfc);
    expect(Buffer.from(image.subarray(0, 11)).toString('latin1')).toBe('xenlab BIOS');
  });

  it.skipIf(!haveNasm)('matches bios.asm (rebuild with qemu-dm/bios/build.sh)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xenlab-bios-'));
    try {
      const out = join(dir, 'bios.bin');
      execFileSync('nasm', ['-f', 'bin', '-O9', '-Werror', '-o', out, join(biosDir, 'bios.asm')]);
      const fresh = new Uint8Array(readFileSync(out));
      const firstDiff = fresh.findIndex((b, i) => b !== image[i]);
      expect(fresh.length).toBe(image.length);
      expect(firstDiff, `bios.bin differs from bios.asm at offset ${firstDiff.toString(16)}h: run qemu-dm/bios/build.sh`).toBe(-1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
