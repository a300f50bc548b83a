/** `xenlab-ring`: the ring lab command line. See ring-lab.ts. */
import { Command, Option } from 'commander';
import { SharedMemory } from '@xenlab/ring-buffers';
import { dump, echoBlkif, PROTOCOLS, toJson, type Proto } from './ring-lab.ts';

function openPage(file: string, offset: number, writable: boolean) {
  const pageBase = offset - (offset % 4096);
  try {
    const shm = SharedMemory.open(file, { writable, offset: pageBase, length: 4096 + (offset - pageBase) > 4096 ? 8192 : 4096 });
    return { shm, within: offset - pageBase };
  } catch (e) {
    fail(`cannot map ${file} at offset ${offset}: ${(e as Error).message}`);
  }
}

function fail(msg: string): never {
  console.error(`xenlab-ring: ${msg}`);
  process.exit(1);
}

const offsetOption = new Option('--offset <bytes>', 'byte offset of the ring page in the file').default(0).argParser((v) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) fail(`--offset must be a non-negative integer, not '${v}'`);
  return n;
});

const program = new Command('xenlab-ring')
  .description('Inspect shared ring pages and answer blkif requests, byte-compatible with Xen\'s io/ring.h')
  .showHelpAfterError();

program
  .command('dump')
  .description('print the shared header and the slots between the indices as JSON')
  .addOption(new Option('--proto <proto>', 'ring protocol').choices(PROTOCOLS).makeOptionMandatory())
  .requiredOption('--file <path>', 'file holding the shared page')
  .addOption(offsetOption)
  .action((o: { proto: Proto; file: string; offset: number }) => {
    const { shm, within } = openPage(o.file, o.offset, false);
    console.log(toJson(dump(o.proto, shm.buffer, within)));
    shm.close();
  });

program
  .command('echo')
  .description('act as a back end once: answer every pending request with OKAY, publish, final check')
  .addOption(new Option('--proto <proto>', 'ring protocol').choices(['blkif']).makeOptionMandatory())
  .requiredOption('--file <path>', 'file holding the shared page')
  .addOption(offsetOption)
  .action((o: { file: string; offset: number }) => {
    const { shm, within } = openPage(o.file, o.offset, true);
    const r = echoBlkif(shm.buffer, within);
    shm.close();
    console.log(toJson(r));
    if (r.error) fail(`the front end broke the ring protocol: ${r.error}`);
  });

program.parse();
