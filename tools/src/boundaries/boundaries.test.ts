import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkBoundaries, checkEdge } from './boundaries.ts';

describe('boundary rules', () => {
  const proc = ['type:process', 'scope:host'];
  const guest = ['type:process', 'scope:guest'];
  const lib = ['type:lib', 'scope:shared'];
  const cpu = ['type:lib', 'scope:hardware'];
  const abi = ['type:abi'];
  it.each([
    [proc, proc, false],
    [guest, proc, false],
    [guest, cpu, false],
    [guest, lib, true],
    [guest, abi, true],
    [proc, lib, true],
    [proc, cpu, true],
    [lib, proc, false],
    [lib, abi, true],
    [abi, lib, false],
    [cpu, lib, false],
    [cpu, abi, true],
    [['type:tool'], proc, false],
    [['type:tool'], lib, true],
    [['type:e2e'], proc, true],
  ])('%j -> %j allowed: %s', (from, to, ok) => {
    expect(checkEdge(from, to) === null).toBe(ok);
  });
});

describe('boundary scan', () => {
  it('finds forbidden, undeclared and project-escaping imports in a fixture tree', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xenlab-bounds-'));
    try {
      const pkg = (ws: string, name: string, tags: string[], deps: string[] = []) => {
        mkdirSync(join(dir, ws, 'src'), { recursive: true });
        writeFileSync(
          join(dir, ws, 'package.json'),
          JSON.stringify({ name, dependencies: Object.fromEntries(deps.map((d) => [d, '*'])), nx: { name: ws, tags } }),
        );
      };
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ workspaces: ['shim', 'hv', 'lib'] }));
      pkg('shim', '@x/shim', ['type:process', 'scope:guest'], ['@x/hv', '@x/lib']);
      pkg('hv', '@x/hv', ['type:process', 'scope:host']);
      pkg('lib', '@x/lib', ['type:lib']);
      writeFileSync(join(dir, 'shim/src/a.ts'), "import { x } from '@x/hv';\nimport { y } from '@x/lib';\n");
      writeFileSync(join(dir, 'shim/src/b.ts'), "export * from '../../hv/src/z.ts';\n");
      writeFileSync(join(dir, 'lib/src/c.ts'), "const m = await import('@x/hv');\n");
      const { violations } = checkBoundaries(dir);
      const summary = violations.map((v) => `${v.file}:${v.line} ${v.to}`).sort();
      expect(summary).toEqual(['lib/src/c.ts:1 hv', 'lib/src/c.ts:1 hv', 'shim/src/a.ts:1 hv', 'shim/src/b.ts:1 hv']);
      expect(violations.find((v) => v.file === 'lib/src/c.ts' && /without declaring/.test(v.rule))).toBeDefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the repository itself has no violations', () => {
    const root = fileURLToPath(new URL('../../..', import.meta.url));
    const { violations, projects } = checkBoundaries(root);
    expect(projects.map((p) => p.name)).toEqual(
      expect.arrayContaining(['hypervisor', 'dom0', 'domU-pv-kernel-shim', 'qemu-dm', 'xenstore', 'ring-buffers', 'tests', 'tools']),
    );
    expect(violations).toEqual([]);
  });
});
