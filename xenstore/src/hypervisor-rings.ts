/**
 * Attaching a guest's xenstore ring for real (Xen 4.17's xenstored does the same): on
 * XS_INTRODUCE of domain d, map grant reference 1 of d (GNTTAB_RESERVED_XENSTORE, which the
 * domain builder seeded with the ring page) through the hypervisor, bind an interdomain event
 * channel to the port the builder allocated in d, and serve the page with a RingConnection. On
 * RELEASE (or the connection's end) the mapping and the port go. xenstored acts for dom0 here,
 * with dom0's token, as a Linux dom0 process holding /dev/xen/gntdev and /dev/xen/evtchn does.
 *
 * The attacher hook is synchronous and mapping is a round trip, so the domain is introduced
 * "without a ring" for a moment and its connection is attached when the mapping completes
 * (requests the guest queued meanwhile are served then).
 */
import { readFileSync } from 'node:fs';
import { SharedMemory } from '@xenlab/ring-buffers';
import { GNTMAP, GNTST, HypercallClient, hostLayout } from '@xenlab/xen-public';
import { DomainEvents, XenstoreRing } from '@xenlab/xenstore-client';
import { RingConnection } from './ring-connection.ts';
import type { RingAttacher, Xenstored } from './xenstored.ts';

const GNTTAB_RESERVED_XENSTORE = 1;

export interface HypervisorRings {
  attacher: RingAttacher;
  close(): Promise<void>;
}

export async function hypervisorRings(runDir: string, log: (l: string) => void): Promise<HypervisorRings> {
  const L = hostLayout(runDir);
  const hc = await HypercallClient.connect(L.hypervisorSocket, readFileSync(L.dom0Token, 'utf8').trim());
  const mm = SharedMemory.open(hc.info.machine_memory);
  const events = new DomainEvents(hc, mm.buffer);

  const attach = async (xs: Xenstored, domid: number, port: number): Promise<void> => {
    const dom = xs.domains.get(domid);
    if (!dom) return;
    const [m] = await hc.call('grant_table_op', 'map_grant_ref', [{ flags: GNTMAP.host_map, ref: GNTTAB_RESERVED_XENSTORE, dom: domid }]);
    if (!m || m.status !== GNTST.okay) throw new Error(`mapping grant ${GNTTAB_RESERVED_XENSTORE} of domain ${domid} failed (GNTST ${m?.status})`);
    let local: number | undefined;
    const undo = async () => {
      if (local !== undefined) await hc.call('event_channel_op', 'close', { port: local }).catch(() => {});
      await hc.call('grant_table_op', 'unmap_grant_ref', [{ handle: m.handle }]).catch(() => {});
    };
    try {
      const b = await hc.call('event_channel_op', 'bind_interdomain', { remote_dom: domid, remote_port: port });
      local = b.local_port;
      if (xs.domains.get(domid) !== dom) return void (await undo());
      const ring = new XenstoreRing(mm.buffer, m.dev_bus_addr);
      const rc = new RingConnection(xs, domid, ring, events.eventChannel(b.local_port, b.notify), () => void undo());
      dom.conn = rc.conn;
      rc.conn.target = dom.target;
      log(`domain ${domid}: ring mapped (grant ${GNTTAB_RESERVED_XENSTORE}), event channel ${port} bound as ${b.local_port}`);
    } catch (e) {
      await undo();
      throw e;
    }
  };

  return {
    attacher: (xs, dom) => {
      attach(xs, dom.domid, dom.port).catch((e) => log(`domain ${dom.domid}: cannot attach its ring: ${(e as Error).message}`));
      return undefined;
    },
    async close() {
      await events.stop();
      hc.close();
      mm.close();
    },
  };
}
