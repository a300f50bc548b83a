/**
 * xenlab's layout tables against Xen's own headers: a C program built with libxen-dev prints
 * every size and offset, and each must equal what our tables say.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FieldSpecs, Layout } from './layout.ts';
import { blkifRequest, blkifRequestDiscard, blkifRequestIndirect, blkifResponse, blkifSegment, BLKIF_ENTRY_BYTES, BLKIF_RING_ENTRIES_PER_PAGE } from './io/blkif.ts';
import { netifRxRequest, netifRxResponse, netifTxRequest, netifTxResponse, NETIF_RX_RING_ENTRIES_PER_PAGE, NETIF_TX_RING_ENTRIES_PER_PAGE } from './io/netif.ts';
import { xenconsInterface } from './io/console.ts';
import { xenstoreDomainInterface } from './io/xenstore.ts';
import { SRING_HEADER_BYTES } from './ring.ts';

const HAVE = existsSync('/usr/include/xen/io/ring.h');
if (!HAVE) {
  const msg = "Xen's public headers are missing: install them with `apt-get install libxen-dev`";
  if (process.env.CI) throw new Error(`layout check against Xen's headers: ${msg}`);
  console.warn(`\n*** SKIPPING the check of layouts against Xen's C headers: ${msg} ***\n`);
}

const snake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const RENAME: Record<string, string> = { seg: 'seg', indirectGrefs: 'indirect_grefs', in: 'in', out: 'out' };

describe.skipIf(!HAVE)("layouts equal Xen's headers", () => {
  it('every size and field offset matches', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xenlab-layouts-'));
    try {
      const exe = join(dir, 'layouts');
      execFileSync('cc', ['-Wall', '-Werror', '-o', exe, fileURLToPath(new URL('./testing/c/layouts.c', import.meta.url))]);
      const xen = JSON.parse(execFileSync(exe, { encoding: 'utf8' })) as Record<string, number>;
      const check = (cName: string, layout: Layout<FieldSpecs>, skip: string[] = []) => {
        expect(layout.size, `sizeof ${cName}`).toBe(xen[`sizeof ${cName}`]);
        for (const key of Object.keys(layout.fields)) {
          if (skip.includes(key)) continue;
          const cField = RENAME[key] ?? snake(key);
          expect(layout.offsetOf(key), `${cName}.${cField}`).toBe(xen[`${cName}.${cField}`]);
        }
      };
      check('blkif_request', blkifRequest);
      check('blkif_request_segment', blkifSegment);
      check('blkif_request_discard', blkifRequestDiscard, ['operation', 'handle']);
      check('blkif_request_indirect', blkifRequestIndirect, ['operation']);
      check('blkif_response', blkifResponse);
      check('netif_tx_request', netifTxRequest);
      check('netif_tx_response', netifTxResponse);
      check('netif_rx_request', netifRxRequest);
      check('netif_rx_response', netifRxResponse);
      expect(xenconsInterface.size).toBeLessThanOrEqual(xen['sizeof xencons_interface']!);
      check('xencons_interface', { ...xenconsInterface, size: xen['sizeof xencons_interface']! });
      check('xenstore_domain_interface', xenstoreDomainInterface);
      expect(BLKIF_ENTRY_BYTES).toBe(xen['sizeof blkif_sring_entry']);
      expect(BLKIF_RING_ENTRIES_PER_PAGE).toBe(xen['blkif entries']);
      expect(NETIF_TX_RING_ENTRIES_PER_PAGE).toBe(xen['netif_tx entries']);
      expect(NETIF_RX_RING_ENTRIES_PER_PAGE).toBe(xen['netif_rx entries']);
      expect(SRING_HEADER_BYTES).toBe(xen['sring header']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
