/*
 * Prints sizes and field offsets of the shared structures as Xen's own public headers define
 * them (libxen-dev, x86_64), as JSON, so layout tests compare xenlab's tables with the real thing.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#define mb() __sync_synchronize()
#define rmb() __sync_synchronize()
#define wmb() __sync_synchronize()
#include <xen/io/blkif.h>
#include <xen/io/netif.h>
#include <xen/io/console.h>
#include <xen/io/xs_wire.h>

#define F(s, f) printf("\"%s.%s\": %zu, ", #s, #f, offsetof(struct s, f))
#define S(s) printf("\"sizeof %s\": %zu, ", #s, sizeof(struct s))

int main(void) {
  printf("{");
  S(blkif_request); F(blkif_request, operation); F(blkif_request, nr_segments); F(blkif_request, handle);
  F(blkif_request, id); F(blkif_request, sector_number); F(blkif_request, seg);
  S(blkif_request_segment); F(blkif_request_segment, gref); F(blkif_request_segment, first_sect); F(blkif_request_segment, last_sect);
  S(blkif_request_discard); F(blkif_request_discard, flag); F(blkif_request_discard, id); F(blkif_request_discard, sector_number); F(blkif_request_discard, nr_sectors);
  S(blkif_request_indirect); F(blkif_request_indirect, indirect_op); F(blkif_request_indirect, nr_segments); F(blkif_request_indirect, id);
  F(blkif_request_indirect, sector_number); F(blkif_request_indirect, handle); F(blkif_request_indirect, indirect_grefs);
  S(blkif_response); F(blkif_response, id); F(blkif_response, operation); F(blkif_response, status);
  S(netif_tx_request); F(netif_tx_request, gref); F(netif_tx_request, offset); F(netif_tx_request, flags); F(netif_tx_request, id); F(netif_tx_request, size);
  S(netif_tx_response); F(netif_tx_response, id); F(netif_tx_response, status);
  S(netif_rx_request); F(netif_rx_request, id); F(netif_rx_request, gref);
  S(netif_rx_response); F(netif_rx_response, id); F(netif_rx_response, offset); F(netif_rx_response, flags); F(netif_rx_response, status);
  S(xencons_interface); F(xencons_interface, in); F(xencons_interface, out); F(xencons_interface, in_cons);
  F(xencons_interface, in_prod); F(xencons_interface, out_cons); F(xencons_interface, out_prod);
  S(xenstore_domain_interface); F(xenstore_domain_interface, req); F(xenstore_domain_interface, rsp);
  F(xenstore_domain_interface, req_cons); F(xenstore_domain_interface, req_prod); F(xenstore_domain_interface, rsp_cons);
  F(xenstore_domain_interface, rsp_prod); F(xenstore_domain_interface, server_features); F(xenstore_domain_interface, connection);
  F(xenstore_domain_interface, error);
  printf("\"sizeof blkif_sring_entry\": %zu, ", sizeof(union blkif_sring_entry));
  printf("\"blkif entries\": %u, ", (unsigned)__CONST_RING_SIZE(blkif, 4096));
  printf("\"netif_tx entries\": %u, ", (unsigned)__CONST_RING_SIZE(netif_tx, 4096));
  printf("\"netif_rx entries\": %u, ", (unsigned)__CONST_RING_SIZE(netif_rx, 4096));
  printf("\"sring header\": %zu}\n", offsetof(struct blkif_sring, ring));
  return 0;
}
