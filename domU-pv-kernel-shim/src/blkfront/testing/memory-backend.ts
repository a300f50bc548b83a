/**
 * TEST DOUBLE, not the product: a minimal block backend for the shim's own unit tests, so
 * blkfront and INT 13h can be tested without importing dom0 (a process the shim may not import).
 * It serves the ring from an in-memory disk and reaches the guest's pages through the guest's
 * grant entries (domid, frame, readonly) as a grant copy would. dom0's real blkback is tested
 * against blkfront in guests/src (the one-process PV harness).
 */
import { BackRing, BLKIF_ENTRY_BYTES, BLKIF_OP, BLKIF_RSP, blkifRequest, blkifResponse, blkifSegment } from '@xenlab/ring-buffers';
import { GTF, type DomId, type GrantFrame } from '@xenlab/xen-public';

export class MemoryBackend {
  readonly ring: BackRing;
  readonly disk: Uint8Array;
  /** Each request served: its operation, first sector, segment count and the guest frames its grefs named. */
  readonly seen: Array<{ operation: number; sector: number; segments: number; frames: number[] }> = [];
  /** Override a request's status (by arrival order) to test error paths. */
  failNext: number[] = [];
  notifications = 0;

  constructor(
    buffer: ArrayBuffer,
    offset: number,
    sectors: number,
    private readonly grantFrame: GrantFrame,
    private readonly page: (gfn: number) => Uint8Array | undefined,
    private readonly self: DomId,
    private readonly notify: () => void,
  ) {
    this.ring = BackRing.attach(buffer, offset, 4096, BLKIF_ENTRY_BYTES);
    this.disk = new Uint8Array(sectors * 512);
  }

  kick(): void {
    const slot = new Uint8Array(BLKIF_ENTRY_BYTES);
    const view = new DataView(slot.buffer);
    do {
      let n;
      while ((n = this.ring.unconsumedRequests()) > 0) {
        for (let i = 0; i < n; i++) {
          this.ring.copyRequest(slot);
          const r = blkifRequest.read(view, 0);
          const frames: number[] = [];
          this.seen.push({ operation: r.operation, sector: r.sectorNumber, segments: r.nrSegments, frames });
          let status: number = this.failNext.shift() ?? BLKIF_RSP.OKAY;
          if (status === BLKIF_RSP.OKAY && (r.operation === BLKIF_OP.READ || r.operation === BLKIF_OP.WRITE)) {
            let sector = r.sectorNumber;
            for (let s = 0; s < r.nrSegments && status === BLKIF_RSP.OKAY; s++) {
              const seg = blkifSegment.read(view, blkifRequest.offsetOf('seg', s));
              const flags = this.grantFrame.flags(seg.gref);
              const pg = this.page(this.grantFrame.frame(seg.gref));
              frames.push(this.grantFrame.frame(seg.gref));
              const write = r.operation === BLKIF_OP.WRITE;
              if ((flags & GTF.type_mask) !== GTF.permit_access || this.grantFrame.domid(seg.gref) !== this.self || !pg || (!write && flags & GTF.readonly)) {
                status = BLKIF_RSP.ERROR;
                break;
              }
              const len = (seg.lastSect - seg.firstSect + 1) * 512;
              const d = this.disk.subarray(sector * 512, sector * 512 + len);
              if (write) d.set(pg.subarray(seg.firstSect * 512, seg.firstSect * 512 + len));
              else pg.set(d, seg.firstSect * 512);
              sector += len / 512;
            }
          }
          blkifResponse.write(this.ring.view, this.ring.nextResponseOffset(), { id: r.id, operation: r.operation, status });
          this.ring.produced();
          if (this.ring.pushResponses()) {
            this.notifications++;
            this.notify();
          }
        }
      }
    } while (this.ring.finalCheckForRequests());
  }
}
