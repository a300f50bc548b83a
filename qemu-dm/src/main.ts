/**
 * The qemu-dm process, one per HVM guest: `node --import tsx qemu-dm/src/main.ts --run-dir DIR
 * --domid N [--disk PATH[,ro]] [--serial pty|none] [--boot c] [--disk-mode pio|pio-multiple|dma]`.
 * Started by the toolstack (dom0/src/toolstack/hvm-builder.ts) after it built the domain; the
 * work is in device-model.ts. SIGTERM stops it cleanly; SIGUSR1 writes its counters to
 * `<run>/qemu-dm/<domid>/stats.json`. Exit code 0 when the domain went away or on SIGTERM.
 */
import { defaultRunDir } from '@xenlab/xen-public';
import { DeviceModel, type DeviceModelOptions } from './device-model.ts';

function usage(msg: string): never {
  process.stderr.write(`qemu-dm: ${msg}\nusage: qemu-dm --domid N [--run-dir DIR] [--disk PATH[,ro]] [--serial pty|none] [--boot LETTERS] [--disk-mode pio|pio-multiple|dma]\n`);
  process.exit(2);
}

function parseArgs(argv: string[]): DeviceModelOptions {
  const o: Partial<DeviceModelOptions> = { runDir: defaultRunDir() };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = argv[i + 1];
    if (v === undefined) usage(`${k} needs a value`);
    i++;
    switch (k) {
      case '--run-dir': o.runDir = v; break;
      case '--domid':
        if (!/^\d+$/.test(v) || Number(v) === 0 || Number(v) >= 0x7ff0) usage(`bad domid '${v}'`);
        o.domid = Number(v);
        break;
      case '--disk': {
        const [path, mode] = v.split(',');
        o.disk = { path: path!, readOnly: mode === 'ro' || mode === 'r' };
        break;
      }
      case '--serial':
        if (v !== 'pty' && v !== 'none') usage(`serial '${v}' is not supported (pty or none)`);
        o.serial = v;
        break;
      case '--boot': o.boot = v; break;
      case '--disk-mode':
        if (v !== 'pio' && v !== 'pio-multiple' && v !== 'dma') usage(`bad disk mode '${v}'`);
        o.diskMode = v;
        break;
      default: usage(`unknown option ${k}`);
    }
  }
  if (o.domid === undefined) usage('--domid is required');
  return o as DeviceModelOptions;
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const log = (m: string) => process.stderr.write(`${new Date().toISOString()} qemu-dm: ${m}\n`);
  let dm: DeviceModel;
  try {
    // XENLAB_QEMU_DM_SPIN_US: how long to spin for the next ioreq before sleeping (default DM_SPIN_US, 200).
    const spin = process.env.XENLAB_QEMU_DM_SPIN_US;
    dm = await DeviceModel.start({ ...opts, log, ...(spin !== undefined && /^\d+$/.test(spin) ? { spinUs: Number(spin) } : {}) });
  } catch (e) {
    log((e as Error).message);
    process.exit(1);
  }
  process.on('SIGTERM', () => dm.stop('SIGTERM'));
  process.on('SIGINT', () => dm.stop('SIGINT'));
  process.on('SIGUSR1', () => dm.writeStats());
  const why = await dm.run();
  log(`exit: ${why}`);
  process.exit(why.startsWith('error') ? 1 : 0);
}

void main();
