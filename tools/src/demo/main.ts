/**
 * `npm run demo`: a whole xenlab host in a temporary run directory, driven with the same
 * commands a user types:
 *
 *   1. `xenlab start`: hypervisor -> dom0 -> xenstored, the toolstack and the backends;
 *   2. `xl create -c guests/hello.cfg`: a PV guest prints through INT 10h -> shim -> console ring
 *      -> dom0's console backend, then powers off (on_poweroff=destroy);
 *   3. `xl create -c guests/diskex.cfg`: the disk exerciser reads and writes a scratch image through
 *      blkfront -> shared ring -> blkback -> the image, with grant copies; its checksums are checked
 *      against the image here;
 *   4. `xl create guests/echo.cfg`, `xl list`, `xl block-list`, `xl destroy`;
 *   5. `xenlab stop`, and the run directory is removed, whatever happened.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../../', import.meta.url));
const guests = join(root, 'guests');
const say = (s = '') => console.log(s);
const indent = (s: string) => s.trimEnd().split('\n').map((l) => `    ${l}`).join('\n');

/** diskex's checksum (guests/README.md): sum = rol(sum, 1) + word, over little-endian words. */
function diskexSum(b: Uint8Array): string {
  let s = 0;
  for (let i = 0; i + 1 < b.length; i += 2) s = ((((s << 1) | (s >>> 15)) & 0xffff) + (b[i]! | (b[i + 1]! << 8))) & 0xffff;
  return s.toString(16).toUpperCase().padStart(4, '0');
}

async function main(): Promise<number> {
  const started = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'xenlab-demo-'));
  const env = { ...process.env, XENLAB_RUN_DIR: dir, XENSTORED_PATH: join(dir, 'xenstored/socket') };
  const cmd = async (name: string, ...args: string[]) => {
    say(`$ ${name} ${args.map((a) => (a.includes(' ') ? `'${a}'` : a)).join(' ')}`);
    const r = await run(process.execPath, [join(root, 'node_modules/.bin', name), ...args], { env, timeout: 60_000 });
    return r.stdout;
  };
  let up = false;
  try {
    say(`xenlab demo: one host in ${dir}\n`);
    say(indent(await cmd('xenlab', 'start', '--pcpus', '2', '--memory', '64', '--dom0-memory', '16')));
    up = true;
    say();

    say(indent(await cmd('xl', 'create', '-c', join(guests, 'hello.cfg'))));
    say(`    (the console log ${join('logs/console/guest-hello.log')} has it from the first byte; on_poweroff=destroy removed the domain)\n`);

    const img = join(dir, 'diskex-scratch.img');
    writeFileSync(img, '');
    truncateSync(img, 4 << 20);
    const out = await cmd('xl', 'create', '-c', join(guests, 'diskex.cfg'), `disk=['format=raw, vdev=xvda, access=rw, target=${img}']`, `kernel="${join(guests, 'diskex.bin')}"`);
    say(indent(out));
    const disk = readFileSync(img);
    const wrote = /WRITE43 .*SUM=([0-9A-F]{4})/.exec(out)?.[1];
    const onDisk = diskexSum(disk.subarray(64 * 512, 72 * 512));
    say(`    image check: LBA 64..71 on disk sum to ${onDisk}, the guest wrote ${wrote ?? '?'}: ${onDisk === wrote ? 'match' : 'MISMATCH'}\n`);

    await cmd('xl', 'create', join(guests, 'echo.cfg'), `disk=['${img},raw,xvda,rw']`);
    say(indent(await cmd('xl', 'list')));
    say(indent(await cmd('xl', 'block-list', 'echo')));
    await cmd('xl', 'destroy', 'echo');
    say(indent(await cmd('xl', 'list')));
    say();
    say(indent((await cmd('xl', 'dmesg')).split('\n').filter((l) => l.includes('dom0: d') || l.includes('shutdown')).join('\n')));
    say(`\ndemo finished in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return onDisk === wrote ? 0 : 1;
  } catch (e) {
    const x = e as { stderr?: string; message: string };
    process.stderr.write(`demo failed: ${x.stderr || x.message}\n`);
    return 1;
  } finally {
    if (up) await run(process.execPath, [join(root, 'node_modules/.bin/xenlab'), 'stop'], { env, timeout: 30_000 }).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then((c) => process.exit(c));
